package main

import "github.com/countersign/countersign/core"

// reviewSettings are serve's settings of what approvers see.
type reviewSettings struct{}

// reviewEnvSettings are the environment variables reviewEnv reads.
var reviewEnvSettings []setting

// reviewEnv reads the review settings.
func reviewEnv(c *Config, env func(...string) string) error { return nil }

// reviewConfig is the service's review configuration.
func reviewConfig(cfg *Config) core.ReviewConfig { return core.ReviewConfig{} }
