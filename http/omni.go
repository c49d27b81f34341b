package http

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Identity routes (the identity design): SIWE, email codes, OIDC login, linking,
// minting OIDC JWTs, and the OIDC discovery document.

type omniKey struct{}

func omniFrom(ctx context.Context) *core.OmniSession {
	s, _ := ctx.Value(omniKey{}).(*core.OmniSession)
	return s
}

func (s *Server) authenticateOmni(r *http.Request) (*http.Request, error) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return r, countersign.Errorf(countersign.Unauthorized, "Authorization: Bearer <session_jwt> is required")
	}
	sess, err := s.Svc.AuthenticateOmni(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return r, err
	}
	return r.WithContext(context.WithValue(r.Context(), omniKey{}, sess)), nil
}

type siweStartReq struct {
	Address string `json:"address"`
	ChainID int64  `json:"chain_id"`
}
type siweStartResp struct {
	RequestID   string    `json:"request_id"`
	SIWEMessage string    `json:"siwe_message"`
	Nonce       string    `json:"nonce"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (s *Server) siweStart(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req siweStartReq
	if err := decode(r, &req); err != nil {
		return err
	}
	c, err := s.Svc.SIWEStart(r.Context(), req.Address, req.ChainID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, siweStartResp{RequestID: c.RequestID, SIWEMessage: c.Message, Nonce: c.Nonce, ExpiresAt: c.ExpiresAt})
}

type siweVerifyReq struct {
	RequestID string `json:"request_id"`
	Signature string `json:"signature"`
}
type sessionResp struct {
	SessionJWT    string    `json:"session_jwt"`
	OmniAccount   string    `json:"omni_account"`
	WalletAddress string    `json:"wallet_address,omitempty"`
	ExpiresAt     time.Time `json:"expires_at"`
}

func (s *Server) siweVerify(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req siweVerifyReq
	if err := decode(r, &req); err != nil {
		return err
	}
	sess, addr, err := s.Svc.SIWEVerify(r.Context(), req.RequestID, req.Signature)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, sessionResp{SessionJWT: sess.Token, OmniAccount: sess.OmniAccount, WalletAddress: addr, ExpiresAt: sess.ExpiresAt})
}

type emailStartReq struct {
	Email string `json:"email"`
}

func (s *Server) emailStart(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req emailStartReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Svc.EmailStart(r.Context(), req.Email); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, okResp{Status: "sent"})
}

type emailVerifyReq struct {
	Email string `json:"email"`
	Code  string `json:"code"`
}

func (s *Server) emailVerify(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req emailVerifyReq
	if err := decode(r, &req); err != nil {
		return err
	}
	sess, err := s.Svc.EmailVerify(r.Context(), req.Email, req.Code)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, sessionResp{SessionJWT: sess.Token, OmniAccount: sess.OmniAccount, ExpiresAt: sess.ExpiresAt})
}

type oidcLoginReq struct {
	IDToken string `json:"id_token"`
	Nonce   string `json:"nonce"`
}

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req oidcLoginReq
	if err := decode(r, &req); err != nil {
		return err
	}
	sess, err := s.Svc.OIDCLogin(r.Context(), req.IDToken, req.Nonce)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, sessionResp{SessionJWT: sess.Token, OmniAccount: sess.OmniAccount, ExpiresAt: sess.ExpiresAt})
}

type linkReq struct {
	IdentityType  string `json:"identity_type"`
	IdentityValue string `json:"identity_value"`
	RequestID     string `json:"request_id,omitempty"` // evm: a SIWE challenge for identity_value…
	Signature     string `json:"signature,omitempty"`  // …signed by it
	Code          string `json:"code,omitempty"`       // email: a login code sent to it
	IDToken       string `json:"id_token,omitempty"`   // oidc: an ID token for it
	Nonce         string `json:"nonce,omitempty"`
}
type linkResp struct {
	OmniAccount  string `json:"omni_account"`
	IdentityType string `json:"identity_type"`
	Linked       bool   `json:"linked"`
}

func (s *Server) link(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req linkReq
	if err := decode(r, &req); err != nil {
		return err
	}
	omni, err := s.Svc.Link(r.Context(), omniFrom(r.Context()), req.IdentityType, req.IdentityValue,
		core.LinkProof{RequestID: req.RequestID, Signature: req.Signature, Code: req.Code, IDToken: req.IDToken, Nonce: req.Nonce})
	if err != nil {
		return err
	}
	return writeJSON(w, 200, linkResp{OmniAccount: omni, IdentityType: req.IdentityType, Linked: true})
}

type mintResp struct {
	JWT        string    `json:"jwt"`
	Expiration time.Time `json:"expiration"`
}

func (s *Server) mintOIDC(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	if err := decodeOptional(r, &struct{}{}); err != nil {
		return err
	}
	t, err := s.Svc.MintOIDC(r.Context(), omniFrom(r.Context()))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, mintResp{JWT: t.JWT, Expiration: t.Expiration})
}

type discoveryResp struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	IDTokenSigningAlgs    []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported       []string `json:"claims_supported"`
	ScopesSupported       []string `json:"scopes_supported"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
}

// openIDConfiguration is the discovery document of the OIDC issuer, as AWS
// IAM reads it: the issuer, where its keys are, and that it signs ES256.
func (s *Server) openIDConfiguration(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	iss := s.Svc.OmniSettings().OIDCIssuer
	if iss == "" {
		return countersign.Errorf(countersign.NotFound, "the OIDC issuer is not configured (set OIDC_ISSUER)")
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	return writeJSON(w, 200, discoveryResp{Issuer: iss, JWKSURI: iss + "/.well-known/jwks.json",
		ResponseTypes: []string{"id_token"}, SubjectTypes: []string{"public"}, IDTokenSigningAlgs: []string{"ES256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "iat", "exp", "jti", "https://aws.amazon.com/tags"}, ScopesSupported: []string{"openid"},
		AuthorizationEndpoint: iss + "/oidc/authorize-not-supported"})
}
