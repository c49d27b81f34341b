package http

import (
	"os"
	"regexp"
	"testing"
)

// TestEthMethodsDocumented: the /eth method table is the one list of its
// methods, and docs/API.md's /eth section names exactly those.
func TestEthMethodsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	sec := regexp.MustCompile("(?s)### `/eth` methods\n(.*?)\n### ").FindSubmatch(doc)
	if sec == nil {
		t.Fatal("docs/API.md has no /eth methods section")
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile("`((?:eth|net|personal)_[A-Za-z0-9_]+)`").FindAllSubmatch(sec[1], -1) {
		named[string(m[1])] = true
	}
	for m, e := range ethMethods {
		if !named[m] {
			t.Errorf("%s is in the /eth table but not in docs/API.md", m)
		}
		if e.Summary == "" || e.Read == (e.call != nil) {
			t.Errorf("%s: a method is a read or has a call, and a summary", m)
		}
	}
	for m := range named {
		if _, ok := ethMethods[m]; !ok {
			t.Errorf("docs/API.md names %s, which /eth does not answer", m)
		}
	}
}
