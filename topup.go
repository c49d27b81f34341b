package countersign

// TopupStore keeps credit top-ups: a provider charge, the transaction that
// pays it, and the state the top-up is in, so a restart resumes it.
type TopupStore interface{}
