package core

import "strings"

// warningText joins the texts of ws, for tests that look for one.
func warningText(ws []Warning) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.Text + "\n")
	}
	return b.String()
}
