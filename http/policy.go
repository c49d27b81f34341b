package http

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Policies (docs/POLICY.md): the owner reads and replaces an agent's or a
// wallet's document; an agent reads its own and its budgets; both dry-run
// a request.

// policyPutReq documents PUT's body: the policy document with mfa_code
// beside rules.
type policyPutReq struct {
	Rules   []map[string]any `json:"rules"`
	Default string           `json:"default,omitempty"`
	MFACode string           `json:"mfa_code"`
}

type policyResp struct {
	Level     countersign.PolicyLevel `json:"level"`
	SubjectID string                  `json:"subject_id"`
	Policy    *core.PolicyView        `json:"policy"` // null when none is set: every request waits for a human
}

type agentPolicyResp struct {
	Agent  *core.PolicyView `json:"agent"`
	Wallet *core.PolicyView `json:"wallet"`
}

type budgetResp struct {
	Budgets []core.BudgetState `json:"budgets"`
}

// readPolicyBody reads a policy document. Its own limit (a few KiB above
// the document's) lets an oversized document be the 400 naming it that
// the policy language promises, not a 413.
func readPolicyBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, countersign.Errorf(countersign.UnsupportedMedia, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, core.MaxPolicyDocument+4096+1))
	if err != nil {
		return nil, countersign.Wrap(countersign.BadRequest, err, "cannot read request body")
	}
	if len(body) > core.MaxPolicyDocument+4096 {
		return nil, countersign.Errorf(countersign.BadRequest, "the document is larger than %d KiB", core.MaxPolicyDocument>>10)
	}
	return body, nil
}

// splitMFA takes mfa_code out of a PUT body and returns the document
// without it, keeping every other member as written (so the policy parser
// still refuses unknown fields), and refusing a key given twice.
func splitMFA(body []byte) (doc []byte, code string, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, "", countersign.Errorf(countersign.BadRequest, "the body must be a JSON object: the policy document with mfa_code beside rules")
	}
	var out bytes.Buffer
	out.WriteByte('{')
	seen := map[string]bool{}
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", countersign.Errorf(countersign.BadRequest, "the body is not valid JSON")
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, "", countersign.Errorf(countersign.BadRequest, "%s: is given twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, "", countersign.Errorf(countersign.BadRequest, "%s: not valid JSON", key)
		}
		if key == "mfa_code" {
			if err := json.Unmarshal(raw, &code); err != nil {
				return nil, "", countersign.Errorf(countersign.BadRequest, "mfa_code: must be a string")
			}
			continue
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		k, _ := json.Marshal(key)
		out.Write(k)
		out.WriteByte(':')
		out.Write(raw)
	}
	if _, err := dec.Token(); err != nil {
		return nil, "", countersign.Errorf(countersign.BadRequest, "the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, "", countersign.Errorf(countersign.BadRequest, "the body must be one JSON object with nothing after it")
	}
	out.WriteByte('}')
	return out.Bytes(), code, nil
}

func getPolicy(level countersign.PolicyLevel) handlerFunc {
	return func(s *Server, w http.ResponseWriter, r *http.Request, p *core.Principal) error {
		id := r.PathValue("id")
		v, err := s.Svc.Policy(r.Context(), p, level, id)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, policyResp{Level: level, SubjectID: id, Policy: v})
	}
}

func putPolicy(level countersign.PolicyLevel) handlerFunc {
	return func(s *Server, w http.ResponseWriter, r *http.Request, p *core.Principal) error {
		body, err := readPolicyBody(r)
		if err != nil {
			return err
		}
		doc, code, err := splitMFA(body)
		if err != nil {
			return err
		}
		id := r.PathValue("id")
		v, err := s.Svc.SetPolicy(r.Context(), p, level, id, doc, code)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, policyResp{Level: level, SubjectID: id, Policy: v})
	}
}

func (s *Server) getAgentPolicy(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	a, wl, err := s.Svc.AgentPolicies(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, agentPolicyResp{Agent: a, Wallet: wl})
}

func (s *Server) getBudget(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	b, err := s.Svc.Budgets(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, budgetResp{Budgets: b})
}

func (s *Server) simulate(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req core.PrepareRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.Svc.Simulate(r.Context(), p, r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

// reviewJSON is the decoded view a human reviews (core.Review), for
// agents and humans alike.
type reviewJSON struct {
	Summary  string         `json:"summary"`
	Fields   []fieldJSON    `json:"fields"`
	Function string         `json:"function,omitempty"`
	Args     []fieldJSON    `json:"args,omitempty"`
	Message  string         `json:"message,omitempty"`
	MaxFee   string         `json:"max_fee_display,omitempty"`
	Warnings []core.Warning `json:"warnings"` // {code, severity, text}
}

type fieldJSON struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

func fieldsJSON(fs []core.Field) []fieldJSON {
	out := []fieldJSON{}
	for _, f := range fs {
		out = append(out, fieldJSON{f.Label, f.Value})
	}
	return out
}

// statusView is transaction_status's answer: the transaction, its decoded
// view, and every warning (the policy's and the review's).
type statusView struct {
	core.TxView
	Review   *reviewJSON    `json:"review"`
	Warnings []core.Warning `json:"warnings"`
}

// reviewOf decodes t, which was loaded for the caller, as the status and
// prepare answers carry it.
func (s *Server) reviewOf(r *http.Request, p *core.Principal, t *countersign.Transaction) *reviewJSON {
	rv := s.Svc.PollReview(r.Context(), p, t) // t was loaded for p: cached for a moment (core/review_cache.go)
	out := &reviewJSON{Summary: rv.Summary, Fields: fieldsJSON(rv.Fields), Function: rv.Function, Message: rv.Message, MaxFee: rv.MaxFee, Warnings: rv.Warnings}
	if len(rv.Args) > 0 {
		out.Args = fieldsJSON(rv.Args)
	}
	if out.Warnings == nil {
		out.Warnings = []core.Warning{}
	}
	return out
}

func allWarnings(t *countersign.Transaction, rv *reviewJSON) []core.Warning {
	w := core.PolicyWarnings(t.PolicyWarnings)
	if rv != nil {
		w = append(w, rv.Warnings...)
	}
	return w
}
