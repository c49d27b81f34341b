package core

import "testing"

func TestFoldedDuplicateKeys(t *testing.T) {
	for raw, want := range map[string]bool{
		`[{"type":"uint256","Type":"uint8"}]`:          true,
		`{"a":1,"a":2}`:                                true,
		`{"a":{"b":1,"B":2}}`:                          true,
		`{"a":{"b":1},"b":[{"c":1},{"c":2}]}`:          false,
		`[{"type":"function","name":"x","inputs":[]}]`: false,
		`{"a":"b","b":"a"}`:                            false,
		`{"a":[1,2,{"x":1,"X":1}]}`:                    true,
		`"text"`:                                       false,
		`{"a":`:                                        true,
	} {
		if got := foldedDuplicateKeys([]byte(raw)); got != want {
			t.Errorf("%s: %v, want %v", raw, got, want)
		}
	}
}
