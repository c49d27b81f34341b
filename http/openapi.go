package http

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
)

// buildOpenAPI generates the OpenAPI 3.1 document from the route table, so
// the document and the routes cannot drift apart. Schemas come from the Go
// request and response types by reflection.
func buildOpenAPI(routes []Route) []byte {
	schemas := map[string]any{}
	paths := map[string]map[string]any{}
	for _, rt := range routes {
		if rt.UI {
			continue // the web UI's pages and forms are not the API
		}
		op := map[string]any{
			"summary":     rt.Summary,
			"operationId": operationID(rt),
			"x-access":    rt.Access.String(),
			"x-errors":    rt.Errors(),
			"responses": map[string]any{
				itoa(rt.Status): map[string]any{
					"description": http.StatusText(rt.Status),
					"content":     map[string]any{contentType(rt): map[string]any{"schema": schemaRef(reflect.TypeOf(rt.Resp), schemas)}},
				},
				"default": map[string]any{
					"description": "Error envelope",
					"content":     map[string]any{"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(ErrorBody{}), schemas)}},
				},
			},
		}
		switch rt.Access {
		case User, UserMFA:
			op["security"] = []any{map[string]any{"bearer": []any{}}}
		case Agent:
			op["security"] = []any{map[string]any{"apiKey": []any{}}}
		case UserOrAgent, UserMFAOrAgent:
			op["security"] = []any{map[string]any{"bearer": []any{}}, map[string]any{"apiKey": []any{}}}
		case Service:
			op["security"] = []any{map[string]any{"serviceToken": []any{}}}
		case Omni:
			op["security"] = []any{map[string]any{"omniSession": []any{}}}
		case Daemon:
			op["security"] = []any{map[string]any{"walletToken": []any{}}} // always: loopback alone is not trusted
		}
		var params []any
		for _, q := range rt.Query {
			params = append(params, map[string]any{"name": q, "in": "query", "schema": map[string]any{"type": "string"}})
		}
		if strings.Contains(rt.Path, "{id}") {
			params = append(params, map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if rt.Path == "/api/prepare_transaction" {
			params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "schema": map[string]any{"type": "string", "maxLength": 128}})
		}
		if rt.Path == "/api/ws" {
			params = append(params, map[string]any{"name": "Last-Event-ID", "in": "header", "schema": map[string]any{"type": "string"}})
			op["description"] = "A WebSocket (RFC 6455) for agents, authenticated with X-API-KEY like every agent route: each text message is one event of the agent's own transactions, {\"id\", \"type\", \"transaction\"}. Without after= (or Last-Event-ID) it starts from now. The server pings every 15 s; a client that does not read is disconnected; at most 8 sockets per agent and server (429 RATE_LIMIT beyond). A revoked key is refused before the upgrade (401) and closes an open socket (1008). A browser page of another origin is refused (403)."
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Req != nil {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": schemaRef(reflect.TypeOf(rt.Req), schemas)}}}
		}
		if paths[rt.Path] == nil {
			paths[rt.Path] = map[string]any{}
		}
		paths[rt.Path][strings.ToLower(rt.Method)] = op
	}
	paths["/metrics"] = map[string]any{"get": map[string]any{"summary": "Prometheus metrics: loopback clients only, or Authorization: Bearer <METRICS_TOKEN> when it is set",
		"operationId": "metrics", "x-access": "loopback, or METRICS_TOKEN",
		"responses": map[string]any{"200": map[string]any{"description": "OK", "content": map[string]any{"text/plain": map[string]any{}}},
			"401": map[string]any{"description": "METRICS_TOKEN is set and the bearer token is missing or wrong"},
			"403": map[string]any{"description": "not a loopback client, or relayed by a proxy, and METRICS_TOKEN is not set"}}}}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{"title": "countersign", "version": "1",
			"description": "A wallet server for AI agents in which a human countersigns every spend. Errors use one envelope: {\"error\":{\"code\",\"detail\"}}."},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer":       map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
				"apiKey":       map[string]any{"type": "apiKey", "in": "header", "name": "X-API-KEY"},
				"walletToken":  map[string]any{"type": "apiKey", "in": "header", "name": "X-Auth-Token", "description": "the wallet token: WALLET_TOKEN, or the one generated into DATA_DIR/wallet.token. Daemon routes also refuse web pages (Origin, Sec-Fetch-Site), foreign Host names, non-JSON bodies, proxied requests and agent keys"},
				"omniSession":  map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "session_jwt from /v1/auth/…"},
				"serviceToken": map[string]any{"type": "http", "scheme": "bearer", "description": "SIGNER_TOKEN, for the derived-key signer routes"},
			},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // only maps and strings: cannot fail
	}
	return b
}

func contentType(rt Route) string {
	if rt.Path == "/api/events" {
		return "text/event-stream"
	}
	return "application/json"
}

func operationID(rt Route) string {
	p := strings.NewReplacer("/api/", "", "/", "_", ".", "", "{", "", "}", "", "-", "_").Replace(rt.Path)
	return strings.ToLower(rt.Method) + "_" + strings.Trim(p, "_")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

var (
	timeType = reflect.TypeOf(time.Time{})
	rawType  = reflect.TypeOf(json.RawMessage{})
)

func schemaRef(t reflect.Type, schemas map[string]any) map[string]any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType || t.Kind() == reflect.Interface:
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": schemaRef(t.Elem(), schemas)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaRef(t.Elem(), schemas)}
	case reflect.Struct:
		name := t.Name()
		if name == "" {
			return structSchema(t, schemas)
		}
		name = strings.ToUpper(name[:1]) + name[1:]
		if _, ok := schemas[name]; !ok {
			schemas[name] = map[string]any{} // break cycles
			schemas[name] = structSchema(t, schemas)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func structSchema(t reflect.Type, schemas map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			props[name] = schemaRef(f.Type, schemas)
			if !strings.Contains(opts, "omitempty") {
				required = append(required, name)
			}
		}
	}
	walk(t)
	sort.Strings(required)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}
