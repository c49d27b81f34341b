package awskms_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/countersign/countersign/cloud/awskms"
	"github.com/countersign/countersign/cloud/awskms/kmstest"
	"github.com/countersign/countersign/keys/envelope"
)

func newKEK(t *testing.T, s *kmstest.Server, keyID string) *awskms.KEK {
	t.Helper()
	cfg, err := awskms.ParseURI(s.URI(keyID))
	if err != nil {
		t.Fatal(err)
	}
	k, err := awskms.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func kmsSealer(t *testing.T, kek envelope.KEK, fileKeys ...envelope.KEK) *envelope.Sealer {
	t.Helper()
	s, _, err := envelope.NewSealer(envelope.Options{External: append([]envelope.KEK{kek}, fileKeys...), ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestParseURI(t *testing.T) {
	tests := map[string]struct {
		uri                      string
		wantKey, wantRegion, end string
		wantErr                  string
	}{
		"ok/id":        {uri: "awskms://1234abcd-12ab-34cd-56ef-1234567890ab?region=eu-west-1", wantKey: "1234abcd-12ab-34cd-56ef-1234567890ab", wantRegion: "eu-west-1"},
		"ok/arn":       {uri: "awskms://arn:aws:kms:us-east-1:111122223333:key/abc", wantKey: "arn:aws:kms:us-east-1:111122223333:key/abc"},
		"ok/alias":     {uri: "awskms://alias/countersign?region=us-east-1&endpoint=https://vpce-1.kms.us-east-1.vpce.amazonaws.com", wantKey: "alias/countersign", wantRegion: "us-east-1", end: "https://vpce-1.kms.us-east-1.vpce.amazonaws.com"},
		"ok/loopback":  {uri: "awskms://k?region=eu-west-2&endpoint=http://127.0.0.1:4599", wantKey: "k", wantRegion: "eu-west-2", end: "http://127.0.0.1:4599"},
		"fail/scheme":  {uri: "kms://k", wantErr: "awskms://"},
		"fail/no key":  {uri: "awskms://?region=x", wantErr: "needs a key id"},
		"fail/typo":    {uri: "awskms://k?regoin=x", wantErr: `no parameter "regoin"`},
		"fail/twice":   {uri: "awskms://k?region=a&region=b", wantErr: "2 times"},
		"fail/plain":   {uri: "awskms://k?region=a&endpoint=http://kms.internal:80", wantErr: "plain http"},
		"fail/creds":   {uri: "awskms://k?region=a&endpoint=https://u:p@kms.internal", wantErr: "no credentials"},
		"fail/no host": {uri: "awskms://k?region=a&endpoint=https://", wantErr: "with a host"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := awskms.ParseURI(tt.uri)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "u:p") {
					t.Fatalf("the error repeats the credentials: %v", err)
				}
				return
			}
			if err != nil || c.KeyID != tt.wantKey || c.Region != tt.wantRegion || c.Endpoint != tt.end {
				t.Fatalf("%+v %v", c, err)
			}
		})
	}
}

// A KMS KEK seals and opens through the envelope (by ARN, by id, by
// alias: all resolve to the key's ARN, which the envelope names), in the
// length-prefixed version 2 layout, and a sealer holding a file key and
// the KMS key opens both kinds of value.
func TestKEK_SealOpenOnLocalKMS(t *testing.T) {
	s := kmstest.Start(t)
	arn := s.SymmetricKey(t)
	s.Alias(t, "countersign-test", arn)
	id := arn[strings.LastIndex(arn, "/")+1:]
	for _, ref := range []string{arn, id, "alias/countersign-test"} {
		k := newKEK(t, s, ref)
		if k.ID() != "awskms:"+arn {
			t.Fatalf("%s: id %s, want awskms:%s", ref, k.ID(), arn)
		}
	}
	kek := newKEK(t, s, arn)
	file, err := envelope.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	fileSealed, err := file.Seal("rec-file", []byte("sealed by the file key"))
	if err != nil {
		t.Fatal(err)
	}
	// both: the KMS key seals, the file key opens
	both, _, err := envelope.NewSealer(envelope.Options{External: []envelope.KEK{kek}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := both.Seal("rec-1", []byte("wallet secret"))
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != 2 {
		t.Fatalf("a KMS-sealed value has layout version %d, want 2", sealed[0])
	}
	if got, _ := envelope.SealedKeyID(sealed); got != "awskms:"+arn {
		t.Fatalf("sealed key id %q", got)
	}
	if bytes.Contains(sealed, []byte("wallet secret")) {
		t.Fatal("plaintext in the envelope")
	}
	pt, err := both.Open("rec-1", sealed)
	if err != nil || string(pt) != "wallet secret" {
		t.Fatalf("open: %q %v", pt, err)
	}
	if _, err := both.Open("rec-2", sealed); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("opened under another record id: %v", err)
	}
	if _, err := both.Open("rec-file", fileSealed); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("a sealer without the file key opened its value: %v", err)
	}
}

// TestSecurity_KMSDecryptPinsTheKey: an attacker who can write the
// database replaces a sealed value with one whose wrapped data key is a
// ciphertext of another KMS key — one the attacker controls, whose key
// policy lets this server's role decrypt — and relabels it with the
// configured key's id. KMS would decrypt it (a symmetric ciphertext names
// its key) unless Decrypt names the key: the server would then "open" a
// secret the attacker chose (its wallet key, its TOTP secret). Decrypt
// pins KeyId, so the value does not open; the value left under its own
// key id does not open either (the sealer does not know that key).
func TestSecurity_KMSDecryptPinsTheKey(t *testing.T) {
	s := kmstest.Start(t)
	mine, theirs := s.SymmetricKey(t), s.SymmetricKey(t)
	server := kmsSealer(t, newKEK(t, s, mine))
	attacker := kmsSealer(t, newKEK(t, s, theirs))
	forged, err := attacker.Seal("wallet:w1", []byte("the attacker's key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Open("wallet:w1", forged); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("a value under a key the server was not given: %v", err)
	}
	relabelled := relabel(t, forged, "awskms:"+mine)
	if pt, err := server.Open("wallet:w1", relabelled); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("a foreign key's ciphertext relabelled with the server's key id opened to %q (%v)", pt, err)
	}
}

// relabel rewrites a version 2 envelope's key id.
func relabel(t *testing.T, sealed []byte, id string) []byte {
	t.Helper()
	k := int(sealed[1])
	out := []byte{sealed[0], byte(len(id))}
	out = append(out, id...)
	return append(out, sealed[2+k:]...)
}

// TestSecurity_KMSWrappedKeyBoundToRecord: the record id is the KMS
// encryption context, so a wrapped data key lifted from one row does not
// decrypt for another, at KMS itself (not only at the payload's AEAD).
func TestSecurity_KMSWrappedKeyBoundToRecord(t *testing.T) {
	s := kmstest.Start(t)
	k := newKEK(t, s, s.SymmetricKey(t))
	dek := bytes.Repeat([]byte{1}, 32)
	wrapped, err := k.WrapKey(context.Background(), "mfa:alice", dek)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.UnwrapKey(context.Background(), "mfa:alice", wrapped); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("unwrap: %v", err)
	}
	if got, err := k.UnwrapKey(context.Background(), "mfa:mallory", wrapped); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("unwrapped for another record: %x %v", got, err)
	}
	tampered := append([]byte(nil), wrapped...)
	tampered[len(tampered)-1] ^= 1
	if _, err := k.UnwrapKey(context.Background(), "mfa:alice", tampered); !errors.Is(err, envelope.ErrOpen) {
		t.Fatalf("a tampered wrapped key: %v", err)
	}
}

// TestSecurity_KMSUnreachableFailsClosed: no KEK when KMS cannot be
// reached (New fails, naming the endpoint); and a KMS that goes away
// after the start fails every seal and open with an error that names it —
// not ErrOpen, which would read as a wrong or damaged key — and never
// returns plaintext.
func TestSecurity_KMSUnreachableFailsClosed(t *testing.T) {
	endpoint := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	_, err := awskms.New(context.Background(), awskms.Config{KeyID: "alias/x", Region: "eu-west-2", Endpoint: endpoint})
	if err == nil || !strings.Contains(err.Error(), endpoint) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("New on a port where nothing listens: %v", err)
	}

	s := kmstest.Start(t)
	sealer := kmsSealer(t, newKEK(t, s, s.SymmetricKey(t)))
	sealed, err := sealer.Seal("rec", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	s.Stop()
	pt, err := sealer.Open("rec", sealed)
	if err == nil || pt != nil || errors.Is(err, envelope.ErrOpen) || !strings.Contains(err.Error(), s.Endpoint) {
		t.Fatalf("open with KMS down: %q %v", pt, err)
	}
	if _, err := sealer.Seal("rec2", []byte("x")); err == nil || !strings.Contains(err.Error(), s.Endpoint) {
		t.Fatalf("seal with KMS down: %v", err)
	}
}

// A key that cannot be a KEK is refused at New, saying why.
func TestKEK_RefusesUnusableKeys(t *testing.T) {
	s := kmstest.Start(t)
	ecc := s.Secp256k1Key(t)
	if _, err := awskms.New(context.Background(), awskms.Config{KeyID: ecc, Endpoint: s.Endpoint}); err == nil || !strings.Contains(err.Error(), "SYMMETRIC_DEFAULT") {
		t.Fatalf("a signing key as KEK: %v", err)
	}
	if _, err := awskms.New(context.Background(), awskms.Config{KeyID: "alias/none", Region: kmstest.Region, Endpoint: s.Endpoint}); err == nil || !strings.Contains(err.Error(), "NotFoundException") {
		t.Fatalf("a missing key: %v", err)
	}
	arn := s.SymmetricKey(t)
	if _, err := s.Client.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: &arn}); err != nil {
		t.Fatal(err)
	}
	if _, err := awskms.New(context.Background(), awskms.Config{KeyID: arn, Endpoint: s.Endpoint}); err == nil || !strings.Contains(err.Error(), string(types.KeyStateDisabled)) {
		t.Fatalf("a disabled key: %v", err)
	}
}
