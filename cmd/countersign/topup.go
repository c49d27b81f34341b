package main

import (
	"context"
	"errors"
	"io"

	"github.com/countersign/countersign/core"
)

// topupSettings are serve's topup settings.
type topupSettings struct{}

// topupEnvSettings are the environment variables topupEnv reads.
var topupEnvSettings []setting

// topupEnv reads the topup settings.
func topupEnv(c *Config, env func(...string) string) error { return nil }

// topupConfig is the service's topup configuration.
func topupConfig(cfg *Config) core.TopupConfig { return core.TopupConfig{} }

// topupCmd runs `countersign topup`.
func topupCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("topup: not built yet")
}
