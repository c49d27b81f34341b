package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// benchEnv is a harness server the bench can drive: signing not rate
// limited, TOTP codes made for the server's injected clock.
func benchEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1e9, 1e9 })
	old := totpNow
	totpNow = e.clock.Now
	t.Cleanup(func() { totpNow = old })
	return e
}

func runBench(t *testing.T, e *env, args ...string) (*benchReport, string) {
	t.Helper()
	var out, errb bytes.Buffer
	head := []string{"bench"}
	if len(args) > 0 && args[0] == "footprint" {
		head, args = append(head, "footprint"), args[1:]
	}
	if err := run(context.Background(), append(append(head, "--url", e.url, "--json"), args...), e.cliEnv, &out, &errb); err != nil {
		t.Fatalf("bench %v: %v\n%s", args, err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("report %q: %v", out.String(), err)
	}
	return &rep, errb.String()
}

// TestBenchScenarios is the smoke of every scenario of `countersign bench`
// (about a second each, against the harness server, in CI): each reports
// requests and no error, ordered percentiles, the server's CPU and RSS
// (the harness server is this process, found from the listening port),
// and the ratio to its baseline where it has one.
func TestBenchScenarios(t *testing.T) {
	e := benchEnv(t)
	rep, stderr := runBench(t, e, "--scenario", "all", "--duration", "1s", "--connections", "4", "--wallets", "2", "--in-process-time", "100ms")
	if !strings.Contains(stderr, "sign-ed25519     1/1 s") || !strings.Contains(stderr, " done ") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
	}
	if len(rep.Results) != len(benchScenarios) {
		t.Fatalf("%d results for %d scenarios", len(rep.Results), len(benchScenarios))
	}
	if rep.InProcess["ed25519"] <= 0 || rep.InProcess["secp256k1"] <= 0 || rep.Machine.CPUs < 1 || rep.Date == "" {
		t.Fatalf("report header: %+v", rep)
	}
	for i, r := range rep.Results {
		if r.Scenario != benchScenarios[i] {
			t.Errorf("result %d is %s, want %s", i, r.Scenario, benchScenarios[i])
		}
		if r.Requests <= 0 || r.Errors != 0 || r.FirstError != "" || r.Rate <= 0 || r.Seconds <= 0 {
			t.Errorf("%s: %+v", r.Scenario, r)
		}
		if !(0 < r.P50Ms && r.P50Ms <= r.P90Ms && r.P90Ms <= r.P99Ms) {
			t.Errorf("%s: percentiles not ordered: %v %v %v", r.Scenario, r.P50Ms, r.P90Ms, r.P99Ms)
		}
		if r.Server == nil || r.Server.PID != os.Getpid() || r.Server.RSSMaxMB <= 0 || r.Server.CPUMsPerReq <= 0 {
			t.Errorf("%s: server sample %+v (want this process, %d)", r.Scenario, r.Server, os.Getpid())
		}
		wantRatio := strings.HasPrefix(r.Scenario, "sign-") || r.Scenario == "rpc-personal-sign" || benchTargets[r.Scenario] > 0
		if wantRatio && (r.Ratio <= 0 || r.BaselineRate <= 0 || r.Baseline == "") {
			t.Errorf("%s: no ratio: %+v", r.Scenario, r)
		}
	}
	flow := rep.Results[len(rep.Results)-1]
	for _, k := range []string{"prepare", "authorize", "execute", "confirm", "spend"} {
		if st := flow.Stages[k]; st.Count != flow.Requests || st.P99Ms < st.P50Ms {
			t.Errorf("flow stage %s: %+v (%d spends)", k, st, flow.Requests)
		}
	}
	// every daemon signature of the run is audited, as the server promises
	n := 0
	entries, _ := e.app.Store.AuditEntries(context.Background(), "daemon", 0, 10_000_000)
	for _, a := range entries {
		if a.Action == "daemon.sign.message" {
			n++
		}
	}
	if signed := rep.Results[0].Requests + rep.Results[1].Requests + rep.Results[2].Requests; int64(n) != signed {
		t.Errorf("%d signatures audited, %d reported", n, signed)
	}
}

// The text report names each figure with its ratio.
func TestBenchTextReport(t *testing.T) {
	e := benchEnv(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"bench", "--url", e.url, "--scenario", "sign-secp256k1,status", "--duration", "300ms", "--connections", "2", "--in-process-time", "50ms", "--quiet"}, e.cliEnv, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{"of the in-process secp256k1 single-core rate", "of the target (20000/s)", "p50 ", "p99 ", "errors 0", "server    pid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if errb.Len() != 0 && strings.Contains(errb.String(), " done ") {
		t.Errorf("--quiet printed progress: %s", errb.String())
	}
}

// The footprint mode against a running server (the harness's, this
// process): RSS idle, during flow and after a burst of logins, and the
// binary's size; without --spawn it says it has no cold start.
func TestBenchFootprint(t *testing.T) {
	e := benchEnv(t)
	rep, _ := runBench(t, e, "footprint", "--duration", "1s", "--connections", "2", "--logins", "4", "--settle", "100ms")
	f := rep.Footprint
	if f == nil || f.PID != os.Getpid() || f.IdleRSSMB <= 0 || f.FlowRSSMaxMB <= 0 || f.FlowSpends <= 0 || f.LoginPeakRSSMB <= 0 || f.AfterLoginsRSSMB <= 0 || f.Logins != 4 || f.BinaryBytes <= 0 {
		t.Fatalf("footprint: %+v", f)
	}
	if len(f.ColdStartMs) != 0 || !strings.Contains(f.Note, "--spawn") {
		t.Fatalf("cold start without --spawn: %+v", f)
	}
}

func TestBenchFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--scenario", "clef-sign"}, // no --clef-account
		{"--connections", "0"},
		{"--url", "https://example.com"},
		{"--duration", "-1s"},
		{"--url", "http://127.0.0.1:1", "stray"},
	} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"bench"}, args...), func(string) string { return "" }, &out, &out); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// The /proc readers see this process.
func TestBenchProcSampler(t *testing.T) {
	s := startSampler(os.Getpid())
	x := 0
	for t0 := time.Now(); time.Since(t0) < 150*time.Millisecond; x++ {
	}
	got := s.stop(10)
	if got == nil || got.RSSMaxMB <= 0 || got.Samples < 1 || got.CPUCores <= 0 {
		t.Fatalf("sample: %+v", got)
	}
	if startSampler(0).stop(1) != nil {
		t.Fatal("a sample of no process")
	}
	if localServerPID("192.0.2.1:80") != 0 {
		t.Fatal("a non-local URL has a local process")
	}
}
