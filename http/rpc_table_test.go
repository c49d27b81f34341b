package http

import "testing"

// TestRPCMethodsComeFromTheRouteTable: /rpc's methods are a column of the
// one route table, so every daemon route has exactly one JSON-RPC name,
// no name is used twice, and a name never reaches a route a daemon client
// could not call over REST.
func TestRPCMethodsComeFromTheRouteTable(t *testing.T) {
	seen := map[string]string{}
	for _, rt := range Routes() {
		if rt.RPC == "" {
			if rt.Access == Daemon && rt.Path != "/rpc" {
				t.Errorf("%s %s: a daemon route without a JSON-RPC method", rt.Method, rt.Path)
			}
			if len(rt.RPCParams) > 0 {
				t.Errorf("%s %s: RPCParams without RPC", rt.Method, rt.Path)
			}
			continue
		}
		if rt.Access != Daemon && rt.Access != Anonymous {
			t.Errorf("%s %s: JSON-RPC method %s on a route with access %s", rt.Method, rt.Path, rt.RPC, rt.Access)
		}
		if prev, dup := seen[rt.RPC]; dup {
			t.Errorf("JSON-RPC method %s names both %s and %s %s", rt.RPC, prev, rt.Method, rt.Path)
		}
		seen[rt.RPC] = rt.Method + " " + rt.Path
		if b := rpcBridge[rt.RPC]; b.path != rt.Path || b.method != rt.Method {
			t.Errorf("rpcBridge[%s] = %+v, want %s %s", rt.RPC, b, rt.Method, rt.Path)
		}
	}
	if len(seen) != len(rpcBridge) || len(seen) < 20 {
		t.Errorf("%d JSON-RPC methods in the table, %d bridged", len(seen), len(rpcBridge))
	}
}
