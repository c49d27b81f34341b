package core

import (
	"testing"

	"github.com/google/uuid"
)

// Transaction ids are version 7 UUIDs, in creation order, so the rows a
// group of prepares writes share index pages (newTxID).
func TestNewTxID_TimeOrderedUUIDs(t *testing.T) {
	prev := ""
	for range 1000 {
		id := newTxID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d, variant %v, %v", id, u.Version(), u.Variant(), err)
		}
		if id <= prev {
			t.Fatalf("%s after %s: not in creation order", id, prev)
		}
		prev = id
	}
}
