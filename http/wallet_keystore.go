package http

import (
	"encoding/json"
	"net/http"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Keystore files in and out of the countersigned wallets
// (core/wallet_keystore.go): POST /api/import_wallet, POST /api/export_wallet.

type importWalletReq struct {
	Password string `json:"password"`
	MFACode  string `json:"mfa_code"`
	Name     string `json:"name,omitempty"`
	// Keystore is the v3 keystore file: its JSON object, or that JSON as a string.
	Keystore           json.RawMessage `json:"keystore"`
	KeystorePassphrase string          `json:"keystore_passphrase"`
}

func (s *Server) importWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req importWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	file := []byte(req.Keystore)
	var str string
	if json.Unmarshal(req.Keystore, &str) == nil {
		file = []byte(str)
	}
	wl, err := s.Svc.ImportWallet(r.Context(), p, req.Password, req.MFACode, req.Name, file, req.KeystorePassphrase)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, createWalletResp{WalletID: wl.ID, Address: wl.Address, Name: wl.Name})
}

type exportWalletReq struct {
	Address          string `json:"address"`
	Password         string `json:"password"`
	MFACode          string `json:"mfa_code"`
	ExportPassphrase string `json:"export_passphrase"`
}

type exportWalletResp struct {
	Address string `json:"address"`
	Format  string `json:"format"` // web3-v3
	// Keystore is the v3 keystore file (a JSON object), encrypted under
	// export_passphrase.
	Keystore json.RawMessage `json:"keystore"`
}

func (s *Server) exportWallet(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req exportWalletReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Address == "" {
		return countersign.Errorf(countersign.BadRequest, "address is required")
	}
	file, err := s.Svc.ExportWallet(r.Context(), p, req.Address, req.Password, req.MFACode, req.ExportPassphrase, s.ExportScryptN)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, 200, exportWalletResp{Address: req.Address, Format: "web3-v3", Keystore: file})
}
