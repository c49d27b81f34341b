package main

import (
	"context"
	"io"
)

// benchCmd runs `countersign bench` (today: `countersign load`).
func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return loadCmd(ctx, args, getenv, stdout, stderr)
}
