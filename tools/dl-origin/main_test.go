package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"
)

func TestListenRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{":8089", "0.0.0.0:8089", "[::]:8089", "192.0.2.1:8089", "example.com:80", "nonsense"} {
		if ln, err := listen(addr); err == nil {
			ln.Close()
			t.Errorf("listen(%q) succeeded", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := listen(addr)
		if err != nil {
			t.Errorf("listen(%q): %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// The server must keep serving until cancelled and then return promptly even
// with a never-ending body in flight.
func TestServeShutsDownWithEndlessBodyInFlight(t *testing.T) {
	ln, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	base := "http://" + ln.Addr().String()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz status %d", resp.StatusCode)
	}
	endless, err := http.Get(base + "/files/e?endless=1")
	if err != nil {
		t.Fatal(err)
	}
	defer endless.Body.Close()
	go io.Copy(io.Discard, endless.Body)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(shutdownGrace + 10*time.Second):
		t.Fatal("serve did not return after cancel")
	}
}
