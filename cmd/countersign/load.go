package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	neturl "net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
)

// `countersign load` drives POST /v1/sign/message on a running server from
// many keep-alive connections for a while and reports the signing rate,
// latencies and errors, next to the single-core in-process signing rate
// measured on the same machine in the same run. Its HTTP client is lean
// (requests prebuilt, answers parsed by hand, no per-request allocation to
// speak of), as load generators such as wrk are, so the figures describe
// the server rather than the client.

type loadReport struct {
	URL             string  `json:"url"`
	Curve           string  `json:"curve"`
	Connections     int     `json:"connections"`
	Seconds         float64 `json:"seconds"`
	Signatures      int64   `json:"signatures"`
	Errors          int64   `json:"errors"`
	FirstError      string  `json:"first_error,omitempty"`
	Rate            float64 `json:"signatures_per_second"`
	P50Micros       float64 `json:"p50_us"`
	P99Micros       float64 `json:"p99_us"`
	InProcessRate   float64 `json:"in_process_single_core_per_second"`
	RatioPercent    float64 `json:"http_vs_in_process_percent"`
	VerifiedAnswers int64   `json:"verified_signatures"`
}

func loadCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	base := fs.String("url", or(getenv("COUNTERSIGN_URL"), "http://127.0.0.1:8555"), "the server (env COUNTERSIGN_URL)")
	curve := fs.String("curve", "ed25519", "ed25519 or secp256k1")
	conns := fs.Int("connections", 32, "concurrent keep-alive connections")
	dur := fs.Duration("duration", 10*time.Second, "how long to send")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	calib := fs.Duration("in-process-time", 2*time.Second, "how long to measure the in-process signing rate")
	account := fs.String("account", "", "sign with this unlocked account instead of a new throwaway wallet")
	dataDir := fs.String("data-dir", defaultDataDir(getenv), "the server's data directory, for its wallet.token when WALLET_TOKEN is not set (env COUNTERSIGN_DATA_DIR)")
	if err := parseFlags(fs, args, stdout, `Usage: countersign load [--curve C] [--connections N] [--duration D] [--account ID] [flags]

Drives POST /v1/sign/message on a running server and reports the signing rate,
latencies and errors next to the in-process single-core rate.`, nil); err != nil {
		return err
	}
	if *curve != "ed25519" && *curve != "secp256k1" {
		return errors.New("--curve must be ed25519 or secp256k1")
	}
	if *conns < 1 || *conns > 4096 || *dur <= 0 {
		return errors.New("--connections must be 1…4096 and --duration positive")
	}
	u, err := neturl.Parse(*base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return errors.New("--url must be http://host:port (load talks plain HTTP/1.1, as on loopback)")
	}
	c, from := daemonClient(getenv, *base, *dataDir)

	// The signing key: a throwaway single-key wallet (random key, never
	// shown, the wallet named for the run and locked at the end), or an
	// existing unlocked account (--account).
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	var imp struct {
		WalletID  string `json:"wallet_id"`
		AccountID string `json:"account_id"`
	}
	if *account != "" {
		var a struct {
			Curve string `json:"curve"`
		}
		if err := c.get(ctx, "/v1/address/"+neturl.PathEscape(*account), &a); err != nil {
			return daemonError(err, from)
		}
		imp.AccountID, *curve = *account, a.Curve
	} else {
		password := hex.EncodeToString(key[:16])
		name := "load test " + time.Now().UTC().Format(time.RFC3339)
		if err := c.post(ctx, "/v1/wallet/import-key", map[string]string{"name": name, "password": password, "curve": *curve, "private_key_hex": hex.EncodeToString(key)}, &imp); err != nil {
			return fmt.Errorf("create the load-test wallet: %w", daemonError(err, from))
		}
		if err := c.post(ctx, "/v1/wallet/unlock", map[string]string{"wallet_id": imp.WalletID, "password": password}, nil); err != nil {
			return err
		}
		defer func() {
			_ = c.post(context.WithoutCancel(ctx), "/v1/wallet/lock", map[string]string{"wallet_id": imp.WalletID}, nil)
		}()
		fmt.Fprintf(stderr, "signing with a new wallet %q (%s), locked when the run ends\n", name, imp.WalletID)
	}

	msg := []byte("countersign load test")
	inProc := inProcessRate(*curve, key, msg, *calib) // the same work with a local key of the same curve
	clear(key)

	body := fmt.Sprintf(`{"account_id":%q,"message_base64":%q}`, imp.AccountID, base64.StdEncoding.EncodeToString(msg))
	req := []byte("POST /v1/sign/message HTTP/1.1\r\nHost: " + u.Host + "\r\nContent-Type: application/json\r\n")
	if strings.ContainsAny(c.authToken, "\r\n") {
		return errors.New("the wallet token holds a line break")
	}
	if c.authToken != "" {
		req = append(req, "X-Auth-Token: "+c.authToken+"\r\n"...)
	}
	req = append(req, "Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body...)

	rep := loadReport{URL: *base, Curve: *curve, Connections: *conns, InProcessRate: inProc}
	var signed, failed, verified atomic.Int64
	var firstErr sync.Once
	lat := make([][]time.Duration, *conns)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(err error) {
				failed.Add(1)
				firstErr.Do(func() { rep.FirstError = err.Error() })
			}
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			r := bufio.NewReaderSize(conn, 4096)
			samples := make([]time.Duration, 0, 1<<14)
			defer func() { lat[i] = samples }()
			var respBody []byte
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				t0 := time.Now()
				if _, err := conn.Write(req); err != nil {
					fail(err)
					return
				}
				status, b, err := readResponse(r, respBody[:0])
				respBody = b
				if err != nil {
					fail(err)
					return
				}
				if status != 200 {
					// this connection stops: a refusal (429: raise SIGN_RATE and
					// SIGN_BURST; 423: the wallet was locked) will not go away
					fail(fmt.Errorf("HTTP %d: %.200s", status, b))
					return
				}
				samples = append(samples, time.Since(t0))
				signed.Add(1)
				if n%1000 == 0 { // check real signatures, not just 200s
					if err := verifyLoadSignature(*curve, b, msg); err != nil {
						fail(err)
						return
					}
					verified.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	rep.Seconds = elapsed.Seconds()
	rep.Signatures, rep.Errors, rep.VerifiedAnswers = signed.Load(), failed.Load(), verified.Load()
	rep.Rate = float64(rep.Signatures) / elapsed.Seconds()
	if inProc > 0 {
		rep.RatioPercent = 100 * rep.Rate / inProc
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		rep.P50Micros = float64(all[len(all)/2].Microseconds())
		rep.P99Micros = float64(all[len(all)*99/100].Microseconds())
	}
	if *asJSON {
		out, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(out))
	} else {
		fmt.Fprintf(stdout, "POST /v1/sign/message (%s) on %s: %d connections for %.1f s\n", rep.Curve, rep.URL, rep.Connections, rep.Seconds)
		fmt.Fprintf(stdout, "  signatures   %d (%d checked), errors %d\n", rep.Signatures, rep.VerifiedAnswers, rep.Errors)
		fmt.Fprintf(stdout, "  rate         %.0f/s over HTTP; %.0f/s in process on one core: %.1f %%\n", rep.Rate, rep.InProcessRate, rep.RatioPercent)
		fmt.Fprintf(stdout, "  latency      p50 %.0f µs, p99 %.0f µs\n", rep.P50Micros, rep.P99Micros)
		if rep.FirstError != "" {
			fmt.Fprintf(stdout, "  first error  %s\n", rep.FirstError)
		}
	}
	if rep.Signatures == 0 {
		return fmt.Errorf("no signature succeeded: %s", rep.FirstError)
	}
	return nil
}

// inProcessRate signs msg in a loop on one locked OS thread for about d and
// returns signatures per second: the signature alone, as the daemon makes
// it (ed25519 over the bytes; secp256k1 over the EIP-191 hash).
func inProcessRate(curve string, key, msg []byte, d time.Duration) float64 {
	done := make(chan float64)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var sign func()
		if curve == "ed25519" {
			priv := ed25519.NewKeyFromSeed(key)
			sign = func() { ed25519.Sign(priv, msg) }
		} else {
			priv, err := crypto.ToECDSA(key)
			if err != nil {
				done <- 0
				return
			}
			hash := accounts.TextHash(msg)
			sign = func() { _, _ = crypto.Sign(hash, priv) }
		}
		n, start := 0, time.Now()
		for time.Since(start) < d {
			for range 100 {
				sign()
			}
			n += 100
		}
		done <- float64(n) / time.Since(start).Seconds()
	}()
	return <-done
}

// readResponse reads one HTTP/1.1 response with a Content-Length body into
// buf. It is all a load generator on a keep-alive connection needs.
func readResponse(r *bufio.Reader, buf []byte) (int, []byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, buf, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, buf, fmt.Errorf("not an HTTP/1.1 response: %q", line)
	}
	code := line[9:12]
	if code[0] < '1' || code[0] > '5' || code[1] < '0' || code[1] > '9' || code[2] < '0' || code[2] > '9' {
		return 0, buf, fmt.Errorf("bad status line %q", line)
	}
	status := int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	length := -1
	for {
		h, err := r.ReadSlice('\n')
		if err != nil {
			return 0, buf, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(h, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil || length < 0 || length > 1<<20 {
				return 0, buf, fmt.Errorf("bad Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return 0, buf, errors.New("response without Content-Length")
	}
	buf = slices.Grow(buf[:0], length)[:length]
	_, err = io.ReadFull(r, buf)
	return status, buf, err
}

// verifyLoadSignature checks an answer's signature against its public key.
func verifyLoadSignature(curve string, body, msg []byte) error {
	var a struct {
		Sig string `json:"signature_base64"`
		Pub string `json:"public_key_hex"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("answer is not JSON: %w", err)
	}
	sig, err1 := base64.StdEncoding.DecodeString(a.Sig)
	pub, err2 := hex.DecodeString(a.Pub)
	if err1 != nil || err2 != nil {
		return errors.New("answer has no signature and public key")
	}
	if curve == "ed25519" {
		if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, msg, sig) {
			return errors.New("a signature does not verify")
		}
		return nil
	}
	if len(sig) != 65 {
		return errors.New("a secp256k1 signature is not 65 bytes")
	}
	s := bytes.Clone(sig)
	s[64] -= 27
	got, err := crypto.Ecrecover(accounts.TextHash(msg), s)
	if err != nil {
		return err
	}
	want, err := crypto.DecompressPubkey(pub)
	if err != nil {
		if want, err = crypto.UnmarshalPubkey(pub); err != nil {
			return errors.New("bad public key in the answer")
		}
	}
	if !bytes.Equal(got, crypto.FromECDSAPub(want)) {
		return errors.New("a signature does not recover to the account's key")
	}
	return nil
}
