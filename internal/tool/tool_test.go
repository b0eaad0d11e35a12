package tool

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestRunExitCodesAndOneLine(t *testing.T) {
	tests := []struct {
		name     string
		action   cli.ActionFunc
		wantCode int
		wantErr  string
	}{
		{"ok", func(*cli.Context) error { return nil }, 0, ""},
		{"error", func(*cli.Context) error { return errors.New("claim rows: boom\nsecond line") }, 1, "dl-x: claim rows: boom; second line\n"},
		{"exit code", func(*cli.Context) error { return cli.Exit("", 3) }, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(&cli.App{Name: "dl-x", Action: tc.action}, []string{"dl-x"}, &stderr)
			if code != tc.wantCode || stderr.String() != tc.wantErr {
				t.Fatalf("code %d stderr %q, want %d %q", code, stderr.String(), tc.wantCode, tc.wantErr)
			}
		})
	}
}

func TestBadLogLevel(t *testing.T) {
	var stderr bytes.Buffer
	code := run(&cli.App{Name: "dl-x", Action: func(*cli.Context) error { return nil }}, []string{"dl-x", "--log-level", "loud"}, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "--log-level") {
		t.Fatalf("code %d stderr %q", code, stderr.String())
	}
}
