package http

import (
	"encoding/json"
	"net/http"

	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/ethsig"
)

// The derived-key signer routes (DEVELOPMENT ONLY until a TEE backs them):
// a service holding SIGNER_TOKEN asks for an omni_account's address or
// signature. The server audits each signature (signer/audited, wired in
// cmd/): an entry on the omni_account's chain naming the signed hash,
// never a secret.

type omniReq struct {
	OmniAccount string `json:"omni_account"`
}

type addressResp struct {
	Address string `json:"address"`
}

type signMessageReq struct {
	OmniAccount string `json:"omni_account"`
	MessageHex  string `json:"message_hex"`
}

type signTypedReq struct {
	OmniAccount string          `json:"omni_account"`
	TypedData   json.RawMessage `json:"typed_data"`
}

type signDigestReq struct {
	OmniAccount string `json:"omni_account"`
	Digest      string `json:"digest"` // 0x + 64 hex digits
}

func (s *Server) signDigestDerived(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signDigestReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkOmni(req.OmniAccount); err != nil {
		return err
	}
	d, err := hexutil.Decode(req.Digest)
	if err != nil || len(d) != 32 {
		return countersign.Errorf(countersign.BadRequest, "digest must be 0x and 64 hex digits")
	}
	ds, ok := s.Derived.(countersign.DerivedDigestSigner)
	if !ok {
		return countersign.Errorf(countersign.Unavailable, "this derived-key signer cannot sign digests")
	}
	sig, err := ds.SignDigest(r.Context(), req.OmniAccount, d)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, signatureResp{Signature: hexutil.Encode(sig)})
}

type signatureResp struct {
	Signature string `json:"signature"`
}

func checkOmni(omni string) error {
	if !countersign.ValidOmniAccount(omni) {
		return countersign.Errorf(countersign.BadRequest, "omni_account must be 64 lowercase hex digits")
	}
	return nil
}

func (s *Server) deriveAddress(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req omniReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkOmni(req.OmniAccount); err != nil {
		return err
	}
	a, err := s.Derived.DeriveAddress(r.Context(), req.OmniAccount)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, addressResp{Address: a})
}

func (s *Server) signMessageDerived(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signMessageReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkOmni(req.OmniAccount); err != nil {
		return err
	}
	msg, err := hexutil.Decode(req.MessageHex)
	if err != nil && req.MessageHex != "0x" {
		return countersign.Errorf(countersign.BadRequest, "message_hex must be 0x-prefixed hex")
	}
	sig, err := s.Derived.SignMessage(r.Context(), req.OmniAccount, msg)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, signatureResp{Signature: hexutil.Encode(sig)})
}

func (s *Server) signTypedDerived(w http.ResponseWriter, r *http.Request, _ *core.Principal) error {
	var req signTypedReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkOmni(req.OmniAccount); err != nil {
		return err
	}
	if _, _, err := ethsig.ParseTypedData(req.TypedData, -1); err != nil {
		return err
	}
	sig, err := s.Derived.SignTypedData(r.Context(), req.OmniAccount, req.TypedData)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, signatureResp{Signature: hexutil.Encode(sig)})
}
