package main

import (
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// PPROF_ADDR serves profiles on loopback only, on a listener of its own.
func TestPprofSetting(t *testing.T) {
	for _, bad := range []string{"0.0.0.0:6060", "192.0.2.1:6060", ":6060", "example.com:6060", "6060"} {
		env := map[string]string{"PPROF_ADDR": bad}
		if _, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
			t.Errorf("PPROF_ADDR=%s accepted", bad)
		}
	}
	env := map[string]string{"PPROF_ADDR": "127.0.0.1:0"}
	cfg, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.PprofAddr != "127.0.0.1:0" {
		t.Fatalf("PPROF_ADDR=127.0.0.1:0: %v %q", err, cfg.PprofAddr)
	}
	addr, stop, err := startPprof(cfg.PprofAddr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func(path, host string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if host != "" {
			req.Host = host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := get("/debug/pprof/heap?debug=1", ""); st != 200 {
		t.Fatalf("heap profile answered %d", st)
	}
	if st := get("/debug/pprof/heap?debug=1", "localhost:6060"); st != 200 {
		t.Fatalf("heap profile for Host localhost answered %d", st)
	}
	// a name rebound to 127.0.0.1 by a web page the operator opened
	if st := get("/debug/pprof/heap?debug=1", "rebind.example:6060"); st != 403 {
		t.Fatalf("Host rebind.example answered %d, want 403", st)
	}
	// the command line can carry secrets (a --db URL with a password)
	if st := get("/debug/pprof/cmdline", ""); st != 404 {
		t.Fatalf("cmdline answered %d, want 404", st)
	}
}
