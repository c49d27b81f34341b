package http

import (
	"net/http"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Users: register, log in and out, MFA set-up and recovery, the session keys.

type registerReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type registerResp struct {
	UserID   string `json:"user_id"`
	Username string `json:"username"`
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req registerReq
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := s.Svc.Register(r.Context(), req.Username, req.Password)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, registerResp{UserID: u.ID, Username: u.Username})
}

type loginReq = registerReq

type loginResp struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req loginReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" || req.Password == "" {
		return countersign.Errorf(countersign.BadRequest, "username and password are required")
	}
	tok, _, err := s.Svc.Login(r.Context(), req.Username, req.Password, clientAddr(r))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, loginResp{AccessToken: tok, TokenType: "Bearer", ExpiresIn: int(s.Svc.TokenTTL().Seconds())})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := s.Svc.Logout(r.Context(), p); err != nil {
		return err
	}
	return writeJSON(w, 200, okResp{Status: "logged_out"})
}

type setupMFAReq struct {
	MFACode string `json:"mfa_code,omitempty"`
}

type setupMFAResp struct {
	MFAURI        string   `json:"mfa_uri"`
	Secret        string   `json:"secret"`
	QRPNGBase64   string   `json:"qr_png_base64"`
	RecoveryCodes []string `json:"recovery_codes"` // shown once; each works once
}

type recoveryCodesResp struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

type mfaRecoverReq struct {
	RecoveryCode string `json:"recovery_code,omitempty"`
	MFACode      string `json:"mfa_code,omitempty"`
}

type mfaRecoverResp struct {
	MFAEnabled    bool     `json:"mfa_enabled"`
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
}

func (s *Server) newRecoveryCodes(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	codes, err := s.Svc.NewRecoveryCodes(r.Context(), p, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, recoveryCodesResp{RecoveryCodes: codes})
}

// recoverMFA spends a recovery code (MFA goes off, to enrol again with
// setup_mfa), or, given a current TOTP code instead, issues new recovery
// codes like /api/mfa/recovery_codes.
func (s *Server) recoverMFA(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaRecoverReq
	if err := decode(r, &req); err != nil {
		return err
	}
	switch {
	case (req.RecoveryCode == "") == (req.MFACode == ""):
		return countersign.Errorf(countersign.BadRequest, "send exactly one of recovery_code (to turn MFA off) or mfa_code (to get new recovery codes)")
	case req.RecoveryCode != "":
		if err := s.Svc.RecoverMFA(r.Context(), p, req.RecoveryCode); err != nil {
			return err
		}
		return writeJSON(w, 200, mfaRecoverResp{MFAEnabled: false})
	default:
		codes, err := s.Svc.NewRecoveryCodes(r.Context(), p, req.MFACode)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, mfaRecoverResp{MFAEnabled: true, RecoveryCodes: codes})
	}
}

// decodeOptional decodes a body that may be absent.
func decodeOptional(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil || len(strings.TrimSpace(string(body))) == 0 {
		return err
	}
	return DecodeJSON(body, v)
}

func (s *Server) setupMFA(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req setupMFAReq
	if err := decodeOptional(r, &req); err != nil {
		return err
	}
	e, err := s.Svc.SetupMFA(r.Context(), p, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, setupMFAResp{MFAURI: e.URI, Secret: e.Secret, QRPNGBase64: e.QRPNGBase64, RecoveryCodes: e.RecoveryCodes})
}

type mfaReq struct {
	MFACode string `json:"mfa_code"`
}

type jwksResp struct {
	Keys []map[string]string `json:"keys"`
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	set, err := s.Svc.JWKS(r.Context())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	return writeJSON(w, 200, set)
}
