package core

// ReviewConfig is what the review of a request shows an approver besides
// the request itself.
type ReviewConfig struct{}
