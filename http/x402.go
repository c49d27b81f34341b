package http

// x402Routes are the x402 payment routes.
func x402Routes() []Route { return nil }
