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
	res, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("profile endpoint answered %d", res.StatusCode)
	}
}
