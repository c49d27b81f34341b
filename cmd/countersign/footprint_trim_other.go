//go:build !linux

package main

import "time"

// Elsewhere the server does not trim its mappings (footprint_trim.go).
const trimSupported = false

func processCPU() time.Duration { return 0 }

func trimBinaryPages(bool) (int64, error) { return 0, nil }
