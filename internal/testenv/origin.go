package testenv

import (
	"net/http/httptest"
	"testing"

	"github.com/dlkit/dl/internal/origin"
)

// StartOrigin serves a fresh origin on a loopback port until cleanup and
// returns it (for its counters) with its base URL, e.g. "http://127.0.0.1:41234".
func StartOrigin(t testing.TB) (*origin.Origin, string) {
	t.Helper()
	o := origin.New()
	srv := httptest.NewServer(o)
	t.Cleanup(func() {
		// Endless and trickle bodies only end when their connection does;
		// Close alone would wait for them.
		srv.CloseClientConnections()
		srv.Close()
	})
	return o, srv.URL
}
