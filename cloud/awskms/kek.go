// Package awskms uses AWS KMS keys: a symmetric key as the key-encryption
// key of the sealed secrets (KEK, this file) and an ECC_SECG_P256K1 key as
// an Ethereum transaction signer (signer.go). It talks to the KMS API
// through aws-sdk-go-v2 at the regional endpoint or a configured one (a
// VPC endpoint, or local-kms in the tests).
package awskms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/countersign/countersign/keys/envelope"
)

// Config names a KMS key and how to reach it.
type Config struct {
	// KeyID is a key id, a key ARN, an alias name (alias/NAME) or an
	// alias ARN. It is resolved to the key's ARN once, at New.
	KeyID string
	// Region is the key's region; "" takes it from an ARN, then from
	// AWS_REGION or AWS_DEFAULT_REGION.
	Region string
	// Endpoint overrides the regional endpoint (a VPC endpoint, or
	// local-kms in tests). It must be https, except on a loopback host:
	// Decrypt answers carry data keys in plaintext.
	Endpoint string
	// Credentials signs the requests; nil reads AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the SDK's default
	// chain (profiles and SSO, web identity, ECS and EC2 roles) — except
	// for a loopback endpoint without AWS_PROFILE, which is sent unsigned
	// (a local KMS accepts that).
	Credentials awssdk.CredentialsProvider
	// Timeout bounds each KMS call, retries included (default 10s).
	Timeout time.Duration
}

// ParseURI parses a KEK_URI: awskms://KEY_ID?region=REGION&endpoint=URL.
// KEY_ID may contain '/' and ':' (alias/NAME, an ARN) and is taken as it
// is, not URL-parsed. An unknown parameter is an error: a misspelt
// "endpoint" must not send the data keys to the default endpoint.
func ParseURI(uri string) (Config, error) {
	rest, ok := strings.CutPrefix(uri, "awskms://")
	if !ok {
		return Config{}, errors.New("a KMS key-encryption key URI starts with awskms://")
	}
	id, query, _ := strings.Cut(rest, "?")
	id, err := url.PathUnescape(id)
	if err != nil || strings.TrimSpace(id) == "" || strings.ContainsAny(id, " \t\r\n?#") {
		return Config{}, errors.New("awskms:// needs a key id, key ARN or alias/NAME: awskms://KEY_ID?region=REGION")
	}
	c := Config{KeyID: id}
	q, err := url.ParseQuery(query)
	if err != nil {
		return Config{}, fmt.Errorf("awskms:// parameters: %w", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("awskms:// parameter %q is given %d times", k, len(vs))
		}
		switch k {
		case "region":
			c.Region = vs[0]
		case "endpoint":
			c.Endpoint = vs[0]
		default:
			return Config{}, fmt.Errorf("awskms:// has no parameter %q (region, endpoint)", k)
		}
	}
	if c.Endpoint != "" {
		if err := checkEndpoint(c.Endpoint); err != nil {
			return Config{}, err
		}
	}
	return c, nil
}

// checkEndpoint refuses an endpoint where a KMS answer could be read or
// changed on the way: Decrypt's answer is a data key in plaintext.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" {
		return fmt.Errorf("the KMS endpoint must be an https:// URL with a host (and no credentials or query), not %q", redact(endpoint))
	}
	if u.Scheme == "http" {
		ip := net.ParseIP(u.Hostname())
		if u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("the KMS endpoint %s is plain http on a non-loopback host: KMS answers carry data keys in plaintext, use https", redact(endpoint))
		}
	}
	return nil
}

// loopback reports whether endpoint is a URL on this machine.
func loopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || endpoint == "" {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// redact keeps scheme, host and path of an endpoint for messages.
func redact(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// KEK is a symmetric KMS key used as a key-encryption key: it wraps a data
// key with Encrypt and unwraps it with Decrypt, always naming the key (so
// a ciphertext of any other key, even one this role may use, is refused)
// and binding the record id as encryption context (so a wrapped key moved
// to another row does not decrypt, and CloudTrail names the record each
// Decrypt was for).
//
// Encrypt, not GenerateDataKey: a rotation re-wraps an existing data key
// under the new KEK without re-encrypting the secret, which only Encrypt
// can do, and one path for seal and rotation is one path to test.
type KEK struct{ conn }

// conn is a KMS client bound to one key.
type conn struct {
	client    *kms.Client
	arn       string // the resolved key ARN: what every call names
	where     string // endpoint (or region) for messages
	timeout   time.Duration
	anonymous bool // no credentials: requests go unsigned
}

var _ envelope.KEK = (*KEK)(nil)

// New resolves cfg's key (DescribeKey) and checks it can be used: enabled,
// symmetric, for encryption, and an Encrypt/Decrypt round trip works with
// these credentials. Any failure is an error naming the endpoint and the
// key: a server never starts on a KEK it cannot use.
func New(ctx context.Context, cfg Config) (*KEK, error) {
	client, where, anonymous, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	k := &KEK{conn{client: client, where: where, timeout: cfg.Timeout, anonymous: anonymous}}
	if k.timeout <= 0 {
		k.timeout = 10 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := client.DescribeKey(cctx, &kms.DescribeKeyInput{KeyId: &cfg.KeyID})
	if err != nil {
		return nil, k.explain("DescribeKey "+cfg.KeyID, err)
	}
	md := out.KeyMetadata
	switch {
	case md == nil || md.Arn == nil:
		return nil, fmt.Errorf("AWS KMS at %s: DescribeKey %s returned no key ARN", where, cfg.KeyID)
	case md.KeyState != types.KeyStateEnabled:
		return nil, fmt.Errorf("AWS KMS key %s (%s) is %s, not Enabled", cfg.KeyID, *md.Arn, md.KeyState)
	case md.KeyUsage != types.KeyUsageTypeEncryptDecrypt || md.KeySpec != types.KeySpecSymmetricDefault:
		return nil, fmt.Errorf("AWS KMS key %s (%s) is a %s key for %s: the key-encryption key must be a SYMMETRIC_DEFAULT key for ENCRYPT_DECRYPT", cfg.KeyID, *md.Arn, md.KeySpec, md.KeyUsage)
	}
	k.arn = *md.Arn
	// The permissions the server needs, checked now rather than at the
	// first login: kms:Encrypt and kms:Decrypt on this key.
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return nil, err
	}
	wrapped, err := k.WrapKey(ctx, "countersign:kek-probe", probe)
	if err != nil {
		return nil, err
	}
	back, err := k.UnwrapKey(ctx, "countersign:kek-probe", wrapped)
	if err != nil {
		return nil, err
	}
	if string(back) != string(probe) {
		return nil, fmt.Errorf("AWS KMS at %s: key %s decrypted its own ciphertext to other bytes", where, k.arn)
	}
	clear(back)
	return k, nil
}

// newClient builds the KMS client of cfg; where names the endpoint (or the
// region's) for messages.
func newClient(cfg Config) (_ *kms.Client, where string, anonymous bool, err error) {
	region := cfg.Region
	if region == "" && strings.HasPrefix(cfg.KeyID, "arn:") {
		if parts := strings.Split(cfg.KeyID, ":"); len(parts) > 3 {
			region = parts[3]
		}
	}
	if region == "" {
		region = os.Getenv("AWS_REGION")
	}
	if region == "" {
		region = os.Getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return nil, "", false, fmt.Errorf("AWS KMS key %s: no region (add ?region=… to the URI, use a key ARN, or set AWS_REGION)", cfg.KeyID)
	}
	creds := cfg.Credentials
	if creds == nil {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		switch {
		case id != "" && secret != "":
			static := awssdk.Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Source: "environment"}
			creds = awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) { return static, nil })
		case loopback(cfg.Endpoint) && os.Getenv("AWS_PROFILE") == "":
			// a KMS on this machine (local-kms) takes unsigned requests;
			// asking the instance metadata service would only wait
			creds, anonymous = awssdk.AnonymousCredentials{}, true
		default:
			// the SDK's default chain: shared config and credentials files
			// (AWS_PROFILE, SSO), web identity (EKS service accounts), the
			// ECS task role and the EC2 instance role — whatever the
			// machine is given, resolved (and refreshed) when first needed
			ac, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(region))
			if err != nil {
				return nil, "", false, fmt.Errorf("AWS credentials for KMS key %s: %w", cfg.KeyID, err)
			}
			creds = ac.Credentials
		}
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	opts := kms.Options{
		Region:      region,
		Credentials: creds,
		HTTPClient:  &http.Client{Timeout: timeout},
		// A few quick retries ride out a dropped connection; long backoffs
		// would only hold a login or a signature while KMS is down.
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = 500 * time.Millisecond
		}),
	}
	where = "kms." + region + ".amazonaws.com"
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, "", false, err
		}
		opts.BaseEndpoint = awssdk.String(cfg.Endpoint)
		where = redact(cfg.Endpoint)
	}
	return kms.New(opts), where, anonymous, nil
}

// ID names the KEK in envelopes: "awskms:" and the key's ARN.
func (k *KEK) ID() string { return "awskms:" + k.arn }

// ARN returns the key's ARN.
func (k *KEK) ARN() string { return k.arn }

// encryptionContext binds a wrapped data key to its record. It is logged
// by CloudTrail in clear: record ids name rows, they are not secrets.
func encryptionContext(recordID string) map[string]string {
	return map[string]string{"countersign:record": recordID, "countersign:layer": "dek/v1"}
}

// WrapKey encrypts dek under the KMS key, bound to recordID.
func (k *KEK) WrapKey(ctx context.Context, recordID string, dek []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{KeyId: &k.arn, Plaintext: dek, EncryptionContext: encryptionContext(recordID)})
	if err != nil {
		return nil, k.explain("Encrypt with "+k.arn, err)
	}
	if len(out.CiphertextBlob) == 0 {
		return nil, fmt.Errorf("AWS KMS at %s: Encrypt with %s returned no ciphertext", k.where, k.arn)
	}
	return out.CiphertextBlob, nil
}

// UnwrapKey decrypts a data key wrapped by WrapKey for recordID. A
// ciphertext that is not this key's for this record is envelope.ErrOpen;
// KMS being unreachable or refusing is another error, naming it.
func (k *KEK) UnwrapKey(ctx context.Context, recordID string, wrapped []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	// KeyId pins the key: without it KMS decrypts with whatever key the
	// ciphertext names, and a row rewritten to name a key an attacker
	// controls (its key policy may well let this role decrypt) would
	// open to a data key the attacker chose.
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{KeyId: &k.arn, CiphertextBlob: wrapped, EncryptionContext: encryptionContext(recordID),
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault})
	if err != nil {
		var bad *types.InvalidCiphertextException
		var wrong *types.IncorrectKeyException
		if errors.As(err, &bad) || errors.As(err, &wrong) {
			return nil, envelope.ErrOpen
		}
		return nil, k.explain("Decrypt with "+k.arn, err)
	}
	if out.KeyId != nil && *out.KeyId != k.arn {
		clear(out.Plaintext)
		return nil, envelope.ErrOpen
	}
	return out.Plaintext, nil
}

// explain turns an SDK error into one that says where KMS was asked and
// what it answered; nothing in it is secret (no key material, no
// credentials).
func (k *conn) explain(op string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		hint := ""
		if k.anonymous && (api.ErrorCode() == "UnrecognizedClientException" || api.ErrorCode() == "AccessDeniedException" || api.ErrorCode() == "MissingAuthenticationToken") {
			hint = " (no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
		}
		return fmt.Errorf("AWS KMS at %s refused %s: %s: %s%s", k.where, op, api.ErrorCode(), api.ErrorMessage(), hint)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("AWS KMS at %s did not answer %s within %s: %w", k.where, op, k.timeout, err)
	}
	return fmt.Errorf("AWS KMS at %s is unreachable (%s): %w", k.where, op, err)
}
