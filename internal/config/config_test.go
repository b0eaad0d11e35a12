package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestEmptyQueueNameRefused: a DL_QUEUE left empty in dl.env (or set from
// a variable that is not) named the Redis key "", which Redis accepts: the
// tasks went to a list no seed worker, dl-stat default or operator looks
// at. It is a usage error (exit 2) naming the flag and its variable; an
// empty DL_KEY_PREFIX stays allowed (keys without a prefix).
func TestEmptyQueueNameRefused(t *testing.T) {
	for _, v := range []string{"DL_QUEUE", "DL_KEY_PREFIX"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	tests := []struct {
		env     map[string]string
		args    []string
		wantErr string
	}{
		{map[string]string{"DL_QUEUE": ""}, nil, "--queue (DL_QUEUE): empty queue name"},
		{nil, []string{"--queue", ""}, "--queue (DL_QUEUE): empty queue name"},
		{map[string]string{"DL_QUEUE": "  "}, nil, "--queue (DL_QUEUE): empty queue name"},
		{map[string]string{"DL_KEY_PREFIX": ""}, nil, ""},
		{map[string]string{"DL_QUEUE": "q2"}, nil, ""},
		{nil, nil, ""},
	}
	for _, tt := range tests {
		for k, v := range tt.env {
			os.Setenv(k, v)
		}
		ran := false
		var queue string
		app := &cli.App{Name: "dl-x", Flags: RedisFlags(), ExitErrHandler: noExit, Action: func(c *cli.Context) error {
			ran, queue = true, c.String(FlagQueue)
			return nil
		}}
		err := app.Run(append([]string{"dl-x"}, tt.args...))
		var ec cli.ExitCoder
		switch {
		case tt.wantErr == "" && (err != nil || !ran || queue == ""):
			t.Errorf("%v %v: %v (queue %q), want the action to run", tt.env, tt.args, err, queue)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ec) || ec.ExitCode() != 2 || ran):
			t.Errorf("%v %v: %v (action ran: %v, queue %q), want exit code 2 and %q", tt.env, tt.args, err, ran, queue, tt.wantErr)
		}
		for k := range tt.env {
			os.Unsetenv(k)
		}
	}
}

// TestWorkerNameTellsProcessesApart: a worker's name leads with host:pid
// for operators, and its suffix differs between two processes that share
// both (containers on the host's network), since it decides whose a claim
// is.
func TestWorkerNameTellsProcessesApart(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	a, b := WorkerName(), WorkerName()
	prefix := fmt.Sprintf("%s:%d-", host, os.Getpid())
	if !strings.HasPrefix(a, prefix) || len(a) != len(prefix)+8 {
		t.Fatalf("worker name %q, want %s and 8 hex digits", a, prefix)
	}
	if a == b {
		t.Fatalf("two names alike (%q): host and pid alone can be shared", a)
	}
}
