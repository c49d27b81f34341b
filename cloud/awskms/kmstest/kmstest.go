// Package kmstest runs local-kms (github.com/nsmithuk/local-kms, a real
// implementation of the AWS KMS protocol) for tests: one process per test
// on a free port, its data in the test's temporary directory.
package kmstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Version is the local-kms that scripts/ensure-tools.sh builds.
const Version = "v0.0.0-20260228092603-2a5e92d09ab6"

// Region and Account are the ones local-kms is started with (they are
// part of every key ARN).
const (
	Region  = "eu-west-2"
	Account = "111122223333"
)

// Server is a running local-kms.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Client   *kms.Client

	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// Binary finds the local-kms the test command built: LOCAL_KMS_BIN, else
// ensure-tools.sh's cache path. Under CI a missing binary fails the test;
// elsewhere it skips, naming the command that builds it.
func Binary(t testing.TB) string {
	t.Helper()
	candidates := []string{os.Getenv("LOCAL_KMS_BIN")}
	if dir, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "countersign", "local-kms-"+Version, "local-kms"))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && info.Mode()&0o111 != 0 {
			return c
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("local-kms is not built: run scripts/ensure-tools.sh (the test command does) or set LOCAL_KMS_BIN")
	}
	t.Skip("local-kms not found: run scripts/ensure-tools.sh or set LOCAL_KMS_BIN")
	return ""
}

var started = regexp.MustCompile(`Local KMS started on [0-9.:\[\]]*:([0-9]+)`)

// Start runs local-kms on a free port (PORT=0: it binds and logs the
// port, so no other process can take it between a probe and the start)
// and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT=0", "KMS_REGION="+Region, "KMS_ACCOUNT_ID="+Account,
		"KMS_DATA_PATH="+filepath.Join(dir, "data"), "KMS_SEED_PATH="+filepath.Join(dir, "no-seed.yaml"))
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start local-kms: %v", err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	port := make(chan string, 1)
	var logs strings.Builder
	var logMu sync.Mutex
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := stripANSI(sc.Text())
			logMu.Lock()
			logs.WriteString(line + "\n")
			logMu.Unlock()
			if m := started.FindStringSubmatch(line); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Stop)
	select {
	case p := <-port:
		s.Endpoint = "http://127.0.0.1:" + p
	case <-s.done:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("local-kms exited at start:\n%s", logs.String())
	case <-time.After(30 * time.Second):
		s.Stop()
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("local-kms did not start within 30s:\n%s", logs.String())
	}
	s.Client = kms.New(kms.Options{Region: Region, Credentials: awssdk.AnonymousCredentials{}, BaseEndpoint: awssdk.String(s.Endpoint)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := s.Client.ListKeys(ctx, &kms.ListKeysInput{}); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("local-kms at %s does not answer: %v", s.Endpoint, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m") // local-kms logs in colour

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// Stop ends the process (tests of a KMS that went away call it early).
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
		}
		<-s.done
	})
}

// CreateKey creates a key of spec and usage and returns its ARN.
func (s *Server) CreateKey(t testing.TB, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	out, err := s.Client.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: spec, KeyUsage: usage, Description: awssdk.String("countersign test key")})
	if err != nil {
		t.Fatalf("create a %s key on local-kms: %v", spec, err)
	}
	return *out.KeyMetadata.Arn
}

// SymmetricKey creates a SYMMETRIC_DEFAULT encryption key (a KEK) and
// returns its ARN.
func (s *Server) SymmetricKey(t testing.TB) string {
	return s.CreateKey(t, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt)
}

// Secp256k1Key creates an ECC_SECG_P256K1 signing key (an Ethereum
// account) and returns its ARN.
func (s *Server) Secp256k1Key(t testing.TB) string {
	return s.CreateKey(t, types.KeySpecEccSecgP256k1, types.KeyUsageTypeSignVerify)
}

// Alias points alias/NAME at the key.
func (s *Server) Alias(t testing.TB, name, keyARN string) {
	t.Helper()
	if _, err := s.Client.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: awssdk.String("alias/" + name), TargetKeyId: &keyARN}); err != nil {
		t.Fatal(err)
	}
}

// URI is a KEK_URI for keyID on this server.
func (s *Server) URI(keyID string) string {
	return fmt.Sprintf("awskms://%s?region=%s&endpoint=%s", keyID, Region, s.Endpoint)
}

// KEKURIAt is a KEK_URI for keyID at any endpoint (tests of a KMS that is
// not there).
func KEKURIAt(keyID, endpoint string) string {
	return fmt.Sprintf("awskms://%s?region=%s&endpoint=%s", keyID, Region, endpoint)
}
