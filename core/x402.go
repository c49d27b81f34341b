package core

import "context"

// X402Config configures x402 payments.
type X402Config struct{}

// x402State is the service's x402 state.
type x402State struct{}

// initX402 is called once by New.
func (s *Service) initX402(ctx context.Context) error { return nil }
