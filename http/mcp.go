package http

import (
	"net/http"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// /mcp: the Model Context Protocol for agents. The route is Agent (the
// route table decides who calls); mcp.Handler refuses a request without an
// agent in its context as a second fence, so a wiring mistake fails closed.

// mcp hands the request to the MCP handler with the authenticated agent in
// its context; the tools act as that agent and nobody else.
func (s *Server) mcp(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if s.MCP == nil {
		return countersign.Errorf(countersign.NotFound, "MCP is not enabled on this server")
	}
	s.MCP.ServeHTTP(w, r.WithContext(core.WithPrincipal(r.Context(), p)))
	return nil
}
