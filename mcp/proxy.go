package mcp

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Proxy serves countersign's MCP tools on t (stdio for `countersign mcp`)
// by forwarding every call to a running server's /mcp endpoint with the
// agent's API key. There is one implementation of the tools: the server's.
func Proxy(ctx context.Context, baseURL, apiKey string, t sdk.Transport) error {
	if apiKey == "" {
		return fmt.Errorf("COUNTERSIGN_API_KEY is not set: give the agent's API key")
	}
	client := sdk.NewClient(&sdk.Implementation{Name: Name + "-stdio", Version: Version}, nil)
	remote, err := client.Connect(ctx, &sdk.StreamableClientTransport{
		Endpoint:             strings.TrimRight(baseURL, "/") + "/mcp",
		HTTPClient:           &http.Client{Transport: bearer{key: apiKey, next: http.DefaultTransport}},
		DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		return fmt.Errorf("connect to %s/mcp: %w", strings.TrimRight(baseURL, "/"), err)
	}
	defer remote.Close()
	list, err := remote.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	server := sdk.NewServer(&sdk.Implementation{Name: Name, Version: Version}, &sdk.ServerOptions{Instructions: Instructions})
	for _, tool := range list.Tools {
		server.AddTool(tool, func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return remote.CallTool(ctx, &sdk.CallToolParams{Name: req.Params.Name, Arguments: req.Params.Arguments})
		})
	}
	return server.Run(ctx, t)
}

// bearer adds the agent key to every request.
type bearer struct {
	key  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.next.RoundTrip(r)
}
