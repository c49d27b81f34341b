package core

import "context"

// TopupConfig configures credit top-ups.
type TopupConfig struct{}

// topupState is the service's top-up state.
type topupState struct{}

// initTopups is called once by New.
func (s *Service) initTopups(ctx context.Context) error { return nil }

// RunTopups is one pass of the top-up worker (Run calls it every poll).
func (s *Service) RunTopups(ctx context.Context) error { return nil }
