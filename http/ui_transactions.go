package http

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// The web UI's transaction pages: the inbox, one request's review and decision, the activity list, the live stream.

type txRow struct {
	View          core.TxView
	AgentName     string
	Amount        string
	TimeLeft      string
	DelayLeft     string // until a delay rule authorizes it
	Explorer      string
	Confirmations uint64
	Line          core.Line         // kind, decoded action, severity, wallet (core/review_facts.go)
	Labels        map[string]string // the user's address book
}

func (s *Server) agentNames(ctx context.Context, p *core.Principal) map[string]string {
	names := map[string]string{"": "you"}
	if agents, err := s.Svc.Agents(ctx, p); err == nil {
		for _, a := range agents {
			names[a.ID] = a.Name
		}
	}
	return names
}

func (s *Server) rows(ctx context.Context, p *core.Principal, list []*countersign.Transaction, head uint64) []txRow {
	names := s.agentNames(ctx, p)
	now := s.Svc.Now()
	rows := make([]txRow, 0, len(list))
	lines := s.Svc.Lines(ctx, p, list)
	labels := s.Svc.AddressLabels(ctx, p)
	for i, t := range list {
		row := txRow{View: core.View(t), AgentName: names[t.AgentID], Amount: s.Svc.HumanAmount(ctx, t), TimeLeft: timeLeft(t.ExpiresAt.Sub(now)), Line: lines[i], Labels: labels}
		if !t.AuthorizeAt.IsZero() {
			row.DelayLeft = timeLeft(t.AuthorizeAt.Sub(now))
		}
		if t.Status == countersign.StatusPending && row.View.ApprovalsNeeded > 1 {
			if v, err := s.Svc.ViewOf(ctx, t); err == nil { // a quorum's progress: who approved so far
				row.View = v
			}
		}
		if t.TxHash != "" && s.Explorer != "" {
			row.Explorer = strings.TrimRight(s.Explorer, "/") + "/tx/" + t.TxHash
		}
		if t.BlockNumber != nil && head >= *t.BlockNumber {
			row.Confirmations = head - *t.BlockNumber + 1
		}
		rows = append(rows, row)
	}
	return rows
}

type inboxData struct {
	Rows []txRow
	Next string
}

func (s *Server) uiInbox(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	f := countersign.TxFilter{Status: countersign.StatusPending, Limit: inboxPage}
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		f.Before = t
	}
	list, err := s.Svc.Transactions(r.Context(), c.p, f)
	if err != nil {
		return err
	}
	// expired requests drop out (Transactions expires them lazily)
	pending := list[:0]
	for _, t := range list {
		if t.Status == countersign.StatusPending {
			pending = append(pending, t)
		}
	}
	data := inboxData{Rows: s.rows(r.Context(), c.p, pending, 0)}
	if len(list) == inboxPage {
		data.Next = url.QueryEscape(list[len(list)-1].CreatedAt.Format(time.RFC3339Nano))
	}
	if r.URL.Query().Get("fragment") == "1" {
		return s.render(w, r, c, 200, "inbox_fragment.html", "", "", data)
	}
	return s.render(w, r, c, 200, "inbox.html", "Inbox", "inbox", data)
}

type txData struct {
	Review     *core.Review
	TimeLeft   string
	DelayLeft  string // until a delay rule authorizes it
	ExplorerTx string
	// CanWithdraw: the user's approval counts and the request is not yet
	// being executed (ui_approvers.go's withdraw form).
	CanWithdraw bool
	// Ack is the sentence the approver must tick before Approve enables
	// (a danger warning); "" when none is needed.
	Ack      string
	Severity core.Severity // the highest warning's
	Policy   []core.Warning
	Next     string // the next request waiting, offered once this one is decided
	// Passkey: the user can approve with a passkey (ui_passkeys.go), on
	// PasskeyOrigin.
	Passkey       bool
	PasskeyOrigin string
}

func (s *Server) uiTx(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	rv, err := s.Svc.Review(r.Context(), c.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	// the view with the approvals that count so far, for the quorum's progress
	if v, err := s.Svc.ViewOf(r.Context(), rv.Tx); err == nil {
		rv.View = v
	}
	d := txData{Review: rv, TimeLeft: timeLeft(rv.Tx.ExpiresAt.Sub(s.Svc.Now())), CanWithdraw: canWithdraw(rv, c.p),
		Ack: rv.Acknowledgement(), Policy: core.PolicyWarnings(rv.Tx.PolicyWarnings)}
	d.Severity = core.Highest(append(append([]core.Warning{}, d.Policy...), rv.Warnings...))
	if rv.Tx.Status != countersign.StatusPending {
		d.Next = s.Svc.NextPending(r.Context(), c.p, rv.Tx.ID)
	} else {
		d.Passkey, d.PasskeyOrigin = s.hasPasskey(r, c.p), s.Svc.PasskeyOrigin(r.Host)
	}
	if !rv.Tx.AuthorizeAt.IsZero() {
		d.DelayLeft = timeLeft(rv.Tx.AuthorizeAt.Sub(s.Svc.Now()))
	}
	if rv.Tx.TxHash != "" && s.Explorer != "" {
		d.ExplorerTx = strings.TrimRight(s.Explorer, "/") + "/tx/" + rv.Tx.TxHash
	}
	return s.render(w, r, c, 200, "tx.html", rv.Summary, "inbox", d)
}

func (s *Server) uiDecide(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	id := r.PathValue("id")
	d := core.Decision(r.PostForm.Get("decision"))
	if d == "" {
		// core reads no decision as approve (the API's default); a form
		// submitted without its button (Enter in the code field, a script)
		// must not approve.
		return back(w, r, "/tx/"+url.PathEscape(id), countersign.Errorf(countersign.BadRequest, "Press Approve to approve: nothing was decided."), "")
	}
	txs, err := s.Svc.Decide(r.Context(), c.p, core.DecideRequest{IDs: []string{id}, Code: r.PostForm.Get("mfa_code"), Decision: d,
		Reason: strings.TrimSpace(r.PostForm.Get("reason")), Acknowledge: r.PostForm.Get("acknowledge") == "yes", Passkey: []byte(r.PostForm.Get("passkey")), Host: r.Host})
	ok := "Approved: the agent can execute it now."
	if d == core.Reject {
		ok = "Rejected: the agent has been told."
	} else if err == nil && len(txs) == 1 && txs[0].Status == countersign.StatusPending {
		ok = "Approved: your approval is recorded; the quorum needs more approvers."
	}
	return back(w, r, "/tx/"+url.PathEscape(id), err, ok)
}

type activityData struct {
	Rows                    []txRow
	Agents                  []*countersign.Agent
	Statuses                []countersign.Status
	Agent, Status, From, To string
	Next                    string
}

func (s *Server) uiActivity(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	q := r.URL.Query()
	d := activityData{Statuses: countersign.Statuses, Agent: q.Get("agent"), Status: q.Get("status"), From: q.Get("from"), To: q.Get("to")}
	f := countersign.TxFilter{AgentID: d.Agent, Status: countersign.Status(d.Status), Limit: 100}
	if d.From != "" {
		t, err := time.Parse("2006-01-02", d.From)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "from must be a date")
		}
		f.After = t
	}
	if d.To != "" {
		t, err := time.Parse("2006-01-02", d.To)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "to must be a date")
		}
		f.Before = t.Add(24 * time.Hour)
	}
	if b := q.Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		if f.Before.IsZero() || t.Before(f.Before) {
			f.Before = t
		}
	}
	list, err := s.Svc.Transactions(r.Context(), c.p, f)
	if err != nil {
		return err
	}
	head, _ := s.Svc.BlockNumber(r.Context())
	d.Rows = s.rows(r.Context(), c.p, list, head)
	d.Agents, _ = s.Svc.Agents(r.Context(), c.p)
	if len(list) == f.Limit {
		q.Set("before", list[len(list)-1].CreatedAt.Format(time.RFC3339Nano))
		d.Next = "/activity?" + q.Encode()
	}
	return s.render(w, r, c, 200, "activity.html", "Activity", "activity", d)
}

func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.events(w, r, c.p)
}
