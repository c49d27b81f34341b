package countersign

import (
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"
)

// Identity types that can anchor or be linked to an omni_account.
const (
	IdentityEmail        = "email"
	IdentityEVM          = "evm"
	IdentityOAuth2Google = "oauth2_google"
	IdentityOAuth2GitHub = "oauth2_github"
	IdentityOIDC         = "oidc" // value: issuer + "|" + subject
)

// CanonicalIdentity validates and canonicalises an identity value: emails
// trimmed and lowercased, EVM addresses lowercase 0x-hex, OAuth subjects
// and OIDC issuer-qualified subjects as given (trimmed).
func CanonicalIdentity(typ, value string) (string, error) {
	v := strings.TrimSpace(value)
	switch typ {
	case IdentityEmail:
		v = strings.ToLower(v)
		a, err := mail.ParseAddress(v)
		if err != nil || a.Address != v || len(v) > 254 {
			return "", Errorf(BadRequest, "identity_value is not an email address")
		}
	case IdentityEVM:
		v = strings.ToLower(v)
		if len(v) != 42 || !strings.HasPrefix(v, "0x") {
			return "", Errorf(BadRequest, "identity_value must be a 0x-prefixed 20-byte address")
		}
		if _, err := hex.DecodeString(v[2:]); err != nil {
			return "", Errorf(BadRequest, "identity_value must be a 0x-prefixed 20-byte address")
		}
	case IdentityOAuth2Google, IdentityOAuth2GitHub:
		if v == "" || len(v) > 255 {
			return "", Errorf(BadRequest, "identity_value must be the provider's subject id")
		}
	case IdentityOIDC:
		iss, sub, ok := strings.Cut(v, "|")
		if !ok || !strings.HasPrefix(iss, "https://") || sub == "" || len(v) > 512 {
			return "", Errorf(BadRequest, "identity_value must be issuer|subject for oidc")
		}
	default:
		return "", Errorf(BadRequest, "identity_type must be email, evm, oauth2_google, oauth2_github or oidc")
	}
	return v, nil
}

// OmniAccount is the anchor of a user-facing identity:
// lowercase_hex(SHA-256(client_id ‖ identity_type ‖ identity_value)), plain
// concatenation of the canonical strings.
func OmniAccount(clientID, typ, canonicalValue string) string {
	h := sha256.Sum256([]byte(clientID + typ + canonicalValue))
	return hex.EncodeToString(h[:])
}

// ValidOmniAccount reports whether s has the shape of an omni_account.
func ValidOmniAccount(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
