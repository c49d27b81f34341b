package http

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// The approver's half (docs/APPROVER.md): the address book (API and page),
// the session's confirmed reject, and the template helpers that show an
// address with its identicon and label and a warning with its severity.

// approverUXRoutes are the approver's routes added beside the base table.
func approverUXRoutes() []Route {
	return append([]Route{
		// Reads are the user's; writes need MFA set up, because a label is
		// trusted on every review page: a stolen password alone must not
		// put "my cold wallet" on an attacker's address.
		{Method: "GET", Path: "/api/address_book", Access: User, Summary: "The caller's address book: labels shown beside addresses on the review pages", Status: 200, Resp: addressBookResp{}, h: (*Server).addressBook},
		{Method: "POST", Path: "/api/address_book", Access: UserMFA, Summary: "Label an address in the caller's address book (replaces its label; audited)", Status: 201, Req: addressLabelReq{}, Resp: addressLabelJSON{}, h: (*Server).setAddressLabel},
		{Method: "DELETE", Path: "/api/address_book/{address}", Access: UserMFA, Summary: "Remove an address from the caller's address book (audited)", Status: 200, Resp: deletedResp{}, h: (*Server).deleteAddressLabel},

		uiRoute("POST", "/tx/{id}/reject", Web, "Reject a request: the session and a confirmation, no code", (*Server).uiReject),
		uiRoute("GET", "/address-book", Web, "The user's address book", (*Server).uiAddressBook),
		withBack(uiRoute("POST", "/address-book", WebMFA, "Label an address", (*Server).uiSetAddressLabel), "/address-book"),
		withBack(uiRoute("POST", "/address-book/delete", WebMFA, "Remove an address from the address book", (*Server).uiDeleteAddressLabel), "/address-book"),
	}, passkeyRoutes()...) // ui_passkeys.go
}

type addressLabelReq struct {
	Address string `json:"address"`
	Label   string `json:"label"`
}

type addressLabelJSON struct {
	Address   string    `json:"address"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
}

type addressBookResp struct {
	Entries []addressLabelJSON `json:"entries"`
}

type deletedResp struct {
	Deleted bool `json:"deleted"`
}

func (s *Server) addressBook(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.AddressBook(r.Context(), p)
	if err != nil {
		return err
	}
	out := addressBookResp{Entries: []addressLabelJSON{}}
	for _, l := range list {
		out.Entries = append(out.Entries, addressLabelJSON{l.Address, l.Label, l.CreatedAt})
	}
	return writeJSON(w, 200, out)
}

func (s *Server) setAddressLabel(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req addressLabelReq
	if err := decode(r, &req); err != nil {
		return err
	}
	l, err := s.Svc.SetAddressLabel(r.Context(), p, req.Address, req.Label)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, addressLabelJSON{l.Address, l.Label, l.CreatedAt})
}

func (s *Server) deleteAddressLabel(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := s.Svc.DeleteAddressLabel(r.Context(), p, r.PathValue("address")); err != nil {
		return err
	}
	return writeJSON(w, 200, deletedResp{Deleted: true})
}

func (s *Server) uiAddressBook(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	list, err := s.Svc.AddressBook(r.Context(), c.p)
	if err != nil {
		return err
	}
	return s.render(w, r, c, 200, "addressbook.html", "Address book", "addressbook", map[string]any{"Entries": list, "Address": r.URL.Query().Get("address")})
}

func (s *Server) uiSetAddressLabel(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	l, err := s.Svc.SetAddressLabel(r.Context(), c.p, strings.TrimSpace(r.PostForm.Get("address")), r.PostForm.Get("label"))
	if err != nil {
		return back(w, r, "/address-book", err, "")
	}
	return back(w, r, "/address-book", nil, "Saved: "+l.Address+" is “"+l.Label+"” on every page now.")
}

func (s *Server) uiDeleteAddressLabel(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.DeleteAddressLabel(r.Context(), c.p, r.PostForm.Get("address"))
	return back(w, r, "/address-book", err, "Removed from the address book.")
}

// uiReject rejects with the session and an explicit confirmation: backing
// out must be cheap, so it needs no code (approving always does). The
// confirmation is a field only the reject form's own button sends, so no
// other form (and no Enter in the code field) can reject by accident.
func (s *Server) uiReject(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	id := r.PathValue("id")
	if r.PostForm.Get("confirm") != "reject" {
		return back(w, r, "/tx/"+url.PathEscape(id), countersign.Errorf(countersign.BadRequest, "Confirm the rejection with its button."), "")
	}
	_, err := s.Svc.Decide(r.Context(), c.p, core.DecideRequest{IDs: []string{id}, Decision: core.Reject, Reason: strings.TrimSpace(r.PostForm.Get("reason")), SessionReject: true})
	return back(w, r, "/tx/"+url.PathEscape(id), err, "Rejected: the agent has been told.")
}

// uiFuncs are the templates' helpers.
func uiFuncs() template.FuncMap {
	return template.FuncMap{
		"addr":     addrHTML,
		"label":    func(labels map[string]string, a string) string { return labels[strings.ToLower(a)] },
		"short":    shortHex,
		"icon":     identicon,
		"sevIcon":  sevIcon,
		"sevLabel": sevLabel,
		"clamp":    clampRunes,
		"isAddr":   func(s string) bool { return len(s) == 42 && strings.HasPrefix(s, "0x") },
		"utc":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"utcsec":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	}
}

// addrHTML shows an address the same way everywhere: its identicon, the
// approver's label for it, and the address shortened with the whole of it
// in the title and one tap to copy. Every part is escaped here.
func addrHTML(labels map[string]string, a string) template.HTML {
	if a == "" {
		return ""
	}
	esc := html.EscapeString(a)
	label := labels[strings.ToLower(a)]
	var b strings.Builder
	b.WriteString(`<span class="addr" title="` + esc + `">`)
	b.WriteString(`<img class="identicon" alt="" width="16" height="16" src="` + string(identicon(a)) + `">`)
	if label != "" {
		b.WriteString(`<strong class="addr-label">` + html.EscapeString(label) + `</strong> `)
	}
	b.WriteString(`<code class="addr-hex">` + html.EscapeString(shortHex(a)) + `</code>`)
	b.WriteString(`<button type="button" class="copy" data-copy-value="` + esc + `" aria-label="Copy ` + esc + `">Copy</button></span>`)
	return template.HTML(b.String())
}

// shortHex is 0x6813…9eFf for an address or hash, the string itself
// otherwise.
func shortHex(s string) string {
	if len(s) < 14 || !strings.HasPrefix(s, "0x") {
		return s
	}
	return s[:6] + "…" + s[len(s)-4:]
}

// identicon is a deterministic 5×5 mirrored picture of an address, as a
// data: URI (the CSP allows data: images, no inline styles): two addresses
// that share their first and last characters still look different.
func identicon(a string) template.URL {
	h := sha256.Sum256([]byte(strings.ToLower(a)))
	hue := int(h[0])<<8 | int(h[1])
	fg := fmt.Sprintf("hsl(%d,65%%,45%%)", hue%360)
	var b strings.Builder
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 5 5" shape-rendering="crispEdges"><rect width="5" height="5" fill="#eef1f4"/>`)
	for y := 0; y < 5; y++ {
		for x := 0; x < 3; x++ {
			if h[2+y*3+x]&1 == 1 {
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="1" fill="%s"/>`, x, y, fg)
				if x < 2 {
					fmt.Fprintf(&b, `<rect x="%d" y="%d" width="1" height="1" fill="%s"/>`, 4-x, y, fg)
				}
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.URL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString([]byte(b.String())))
}

func sevIcon(s core.Severity) string {
	switch s {
	case core.SeverityDanger:
		return "✖"
	case core.SeverityCaution:
		return "⚠"
	case core.SeverityInfo:
		return "ℹ"
	}
	return ""
}

func sevLabel(s core.Severity) string {
	switch s {
	case core.SeverityDanger:
		return "Danger"
	case core.SeverityCaution:
		return "Caution"
	case core.SeverityInfo:
		return "Note"
	}
	return ""
}

func clampRunes(n int, s string) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
