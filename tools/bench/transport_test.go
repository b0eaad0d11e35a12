package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The breakdown row must fail on anything but a whole 200 body, or a broken
// origin would pass for a fast one.
func TestTransportOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(strings.Repeat("x", 4096)))
		case "/short":
			w.Header().Set("Content-Length", "4096")
			w.Write([]byte("only this"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		paths   []string
		wantErr string
	}{
		{"all whole", []string{"/ok", "/ok", "/ok"}, ""},
		{"a 404", []string{"/ok", "/missing", "/ok"}, "404"},
		{"a short body", []string{"/ok", "/short"}, "/short"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in strings.Builder
			for _, p := range tc.paths {
				in.WriteString(srv.URL + p + "\n")
			}
			err := transportOnly(context.Background(), strings.NewReader(in.String()), 2)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
			}
		})
	}
}
