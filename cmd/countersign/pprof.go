package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
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
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof server", "err", err)
		}
	}()
	log.Info("serving runtime profiles (PPROF_ADDR)", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), hs.Close, nil
}
