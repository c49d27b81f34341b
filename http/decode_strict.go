package http

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/countersign/countersign"
)

// Go's encoding/json takes the last of two equal keys, matches struct
// fields without regard to case, and replaces invalid UTF-8 with U+FFFD.
// Each is a way for one body to mean two things: a proxy or a policy layer
// that reads the first "amount" sees another request than the one stored
// (the same confusion the keystore and receipt decoders refuse). So every
// request body is checked to mean one thing: valid UTF-8 without lone
// surrogate escapes, no key twice in any object, and struct fields spelt
// exactly.

// checkOneMeaning returns BadRequest unless body (already decoded into a
// value of type t) is valid UTF-8, has no duplicate key in any object and
// names struct fields exactly.
func checkOneMeaning(body []byte, t reflect.Type) error {
	if !utf8.Valid(body) {
		return countersign.Errorf(countersign.BadRequest, "request body must be valid UTF-8")
	}
	if bytes.Contains(body, []byte(`\u`)) {
		if hasLoneSurrogate(body) {
			return countersign.Errorf(countersign.BadRequest, "request body has an unpaired UTF-16 surrogate escape")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	return walkValue(dec, t, "")
}

// hasLoneSurrogate reports whether a \uD800–\uDFFF escape is not part of a
// high+low pair.
func hasLoneSurrogate(b []byte) bool {
	for i := 0; i+5 < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] == '\\' { // an escaped backslash: skip both
			i++
			continue
		}
		if b[i+1] != 'u' {
			continue
		}
		v, ok := hex4(b[i+2 : i+6])
		if !ok {
			continue
		}
		switch {
		case v >= 0xD800 && v <= 0xDBFF:
			if i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if w, ok := hex4(b[i+8 : i+12]); ok && w >= 0xDC00 && w <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		case v >= 0xDC00 && v <= 0xDFFF:
			return true
		}
		i += 5
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	var v rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

var rawMessage = reflect.TypeOf(json.RawMessage(nil))

// walkValue consumes one JSON value from dec. t is the Go type it decodes
// into (nil when free-form: only duplicate keys are checked there).
func walkValue(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || (t != nil && t.Kind() == reflect.Interface) || (t != nil && t.Kind() == reflect.Map) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return countersign.Errorf(countersign.BadRequest, "malformed JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		var fields map[string]reflect.Type
		if t != nil && t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return countersign.Errorf(countersign.BadRequest, "malformed JSON")
			}
			key, _ := kt.(string)
			if seen[key] {
				return countersign.Errorf(countersign.BadRequest, "field %q appears twice%s", key, at(path))
			}
			seen[key] = true
			var ft reflect.Type
			if fields != nil {
				var ok bool
				if ft, ok = fields[key]; !ok {
					return countersign.Errorf(countersign.BadRequest, "unknown field %q%s (field names are case-sensitive)", key, at(path))
				}
			}
			if err := walkValue(dec, ft, path+"."+key); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && t != rawMessage {
			et = t.Elem()
		}
		for dec.More() {
			if err := walkValue(dec, et, path+"[]"); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
	}
	if err != nil {
		return countersign.Errorf(countersign.BadRequest, "malformed JSON")
	}
	return nil
}

func at(path string) string {
	if path == "" {
		return ""
	}
	return " in " + strings.TrimPrefix(path, ".")
}

// jsonFields maps the exact JSON names of t's fields (embedded structs
// included) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
