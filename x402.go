package countersign

// X402Store keeps x402 payments: the authorizations signed for paid
// resources, so a nonce is never reused and every payment has a record.
type X402Store interface{}
