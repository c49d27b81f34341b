package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	cshttp "github.com/countersign/countersign/http"
)

// pprofEnvSettings are the environment variables pprofEnv reads.
var pprofEnvSettings = []setting{
	{"PPROF_ADDR", "", "", "serve Go's runtime profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; off when unset. A loopback address only: profiles show memory contents' shapes and timings"},
}

// pprofEnv reads PPROF_ADDR and refuses an address that is not loopback:
// a profile endpoint has no authentication, so it is for this machine.
func pprofEnv(c *Config, env func(...string) string) error {
	addr := env("PPROF_ADDR")
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("PPROF_ADDR: %q is not host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("PPROF_ADDR: %q is not a loopback address (profiles are unauthenticated: serve them on 127.0.0.1 only)", addr)
	}
	c.PprofAddr = addr
	return nil
}

// startPprof serves the runtime profiles on addr until stop is called,
// and returns the address it listens on. It is its own server and mux:
// nothing of it is on the API's listener.
func startPprof(addr string, log *slog.Logger) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("PPROF_ADDR: %w", err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() { // "localhost" resolved elsewhere
		ln.Close()
		return "", nil, fmt.Errorf("PPROF_ADDR: %q listens on %s, not a loopback address", addr, ip)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No /debug/pprof/cmdline (Index answers it 404, "unknown profile"):
	// flags can carry secrets (a --db URL with a password). And loopback
	// names only in Host: a web page the operator opens cannot reach this
	// listener through a name it rebinds to 127.0.0.1 (DNS rebinding).
	hs := &http.Server{Handler: cshttp.LoopbackHostOnly(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server", "err", err)
		}
	}()
	log.Info("serving runtime profiles (PPROF_ADDR)", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), hs.Close, nil
}
