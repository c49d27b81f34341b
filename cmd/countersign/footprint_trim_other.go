//go:build !linux

package main

// Elsewhere the server does not trim its mappings (footprint_trim.go).
const trimSupported = false

func trimBinaryPages(bool) (int64, error) { return 0, nil }
