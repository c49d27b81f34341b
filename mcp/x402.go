package mcp

import sdk "github.com/modelcontextprotocol/go-sdk/mcp"

// addX402Tools adds the x402 payment tools (x402_fetch, x402_mcp_call).
func (t *tools) addX402Tools(s *sdk.Server) {}
