package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/countersign/countersign"
)

// MaxBody bounds every request body (contract ABIs are the largest input).
const MaxBody = 256 << 10

// decode reads exactly one JSON object into v: the body must be JSON (form
// content types are refused), within MaxBody, with no unknown fields, the
// right types and nothing after the object.
func decode(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return DecodeJSON(body, v)
}

func readBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, countersign.Errorf(countersign.UnsupportedMedia, "Content-Type must be application/json")
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return nil, countersign.Wrap(countersign.BadRequest, err, "cannot read request body")
	}
	if len(body) > MaxBody {
		return nil, countersign.Errorf(countersign.TooLarge, "request body is larger than %d KiB", MaxBody>>10)
	}
	return body, nil
}

// DecodeJSON strictly decodes one JSON object from body into v. It is the
// decoder of every request, and a fuzz target.
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return countersign.Errorf(countersign.BadRequest, "request body is required: a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return countersign.Errorf(countersign.BadRequest, "request body must be a single JSON object")
	}
	return checkOneMeaning(body, reflect.TypeOf(v))
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return countersign.Errorf(countersign.BadRequest, "malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return countersign.Errorf(countersign.BadRequest, "request body must be a JSON object")
		}
		return countersign.Errorf(countersign.BadRequest, "field %q must be %s, not %s", typ.Field, jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return countersign.Errorf(countersign.BadRequest, "malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return countersign.Errorf(countersign.BadRequest, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	default:
		return countersign.Errorf(countersign.BadRequest, "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "struct", "map":
		return "an object"
	default:
		return fmt.Sprintf("a %s", kind)
	}
}
