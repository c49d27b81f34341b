package main

import (
	"context"
	"errors"
	"io"

	"github.com/countersign/countersign/core"
)

// x402Settings are serve's x402 settings.
type x402Settings struct{}

// x402EnvSettings are the environment variables x402Env reads.
var x402EnvSettings []setting

// x402Env reads the x402 settings.
func x402Env(c *Config, env func(...string) string) error { return nil }

// x402Config is the service's x402 configuration.
func x402Config(cfg *Config) core.X402Config { return core.X402Config{} }

// x402Cmd runs `countersign x402`.
func x402Cmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("x402: not built yet")
}
