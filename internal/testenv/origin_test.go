package testenv

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/origin"
)

func TestStartOriginServesAndClosesDespiteEndlessBodies(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	t.Run("user", func(t *testing.T) {
		o, base := StartOrigin(t)
		resp, err := http.Get(origin.URL(base, "a", 1000))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 1000 || o.Requests(origin.Path("a")) != 1 {
			t.Fatalf("%d bytes, %d requests", len(body), o.Requests(origin.Path("a")))
		}
		// Left open on purpose: cleanup must not wait for it.
		endless, err := http.Get(base + "/files/e?endless=1")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { endless.Body.Close() })
	})
	if el := time.Since(t0); el > 5*time.Second {
		t.Fatalf("cleanup took %v with an endless body in flight", el)
	}
}
