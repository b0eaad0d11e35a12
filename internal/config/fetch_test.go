package config

import (
	"errors"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// noExit keeps cli from calling os.Exit on an error with an exit code.
func noExit(*cli.Context, error) {}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1048576": 1 << 20, "500K": 500 << 10, "500k": 500 << 10, "10M": 10 << 20,
		"1.5G": 3 << 29, " 2T ": 2 << 40, "0.5k": 512,
	} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1", "10MB", "1e30", "NaN", "Inf", "ten"} {
		if got, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", in, got)
		}
	}
}

func TestFetchOptionsMinFree(t *testing.T) {
	t.Setenv("DL_MIN_FREE", "") // restored after the test
	os.Unsetenv("DL_MIN_FREE")  // so the flag's default is what is read
	tests := []struct {
		args    []string
		want    int64
		wantErr string
	}{
		{nil, 0, ""},
		{[]string{"--min-free", "1G"}, 1 << 30, ""},
		{[]string{"--min-free", "lots"}, 0, "--min-free"},
	}
	for _, tt := range tests {
		var got int64
		app := &cli.App{Name: "dl-fetch", Flags: FetchFlags(), ExitErrHandler: noExit, Action: func(c *cli.Context) error {
			o, err := FetchOptions(c)
			got = o.MinFree
			return err
		}}
		err := app.Run(append([]string{"dl-fetch"}, tt.args...))
		if tt.wantErr == "" && (err != nil || got != tt.want) || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%v: MinFree %d, err %v; want %d, error %q", tt.args, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestDurationsMustBePositive: a lease, an interval or a timeout that has
// no "off" is refused at 0 or below, from the flag or the environment, as
// a usage error (exit 2) naming both; dl-fetch used to panic on --lease 0
// (non-positive interval for NewTicker).
func TestDurationsMustBePositive(t *testing.T) {
	flags := func() []cli.Flag { return append(LeaseFlags(), FetchFlags()...) }
	tests := []struct {
		env, val string
		args     []string
		wantErr  string
	}{
		{"", "", []string{"--lease", "0"}, "--lease (DL_LEASE) must be positive (got 0s)"},
		{"DL_LEASE", "-5s", nil, "--lease (DL_LEASE) must be positive (got -5s)"},
		{"DL_QUEUE_LEASE", "0", nil, "--queue-lease (DL_QUEUE_LEASE) must be positive (got 0s)"},
		{"", "", []string{"--stall-timeout", "0s"}, "--stall-timeout (DL_STALL_TIMEOUT) must be positive (got 0s)"},
		{"DL_CONNECT_TIMEOUT", "0", nil, "--connect-timeout (DL_CONNECT_TIMEOUT) must be positive (got 0s)"},
		{"", "", []string{"--lease", "1ms", "--queue-lease", "1s", "--stall-timeout", "1s", "--connect-timeout", "1s", "--max-time", "0", "--stats-every", "0"}, ""},
		{"", "", nil, ""}, // the defaults
	}
	for _, tt := range tests {
		if tt.env != "" {
			t.Setenv(tt.env, tt.val)
		}
		checkUsage(t, flags(), tt.env+"="+tt.val, tt.args, tt.wantErr)
		if tt.env != "" {
			os.Unsetenv(tt.env)
		}
	}
}

// checkUsage runs a tool with flags and args: with wantErr empty its action
// must run; else the run must be refused before it, as a usage error (exit
// 2) whose message holds wantErr. env says what the environment was, for
// the failure's message.
func checkUsage(t *testing.T, flags []cli.Flag, env string, args []string, wantErr string) {
	t.Helper()
	ran := false
	app := &cli.App{Name: "dl-x", Flags: flags, ExitErrHandler: noExit, Action: func(*cli.Context) error { ran = true; return nil }}
	err := app.Run(append([]string{"dl-x"}, args...))
	var ec cli.ExitCoder
	switch {
	case wantErr == "" && (err != nil || !ran):
		t.Errorf("%s %v: %v, want the action to run", env, args, err)
	case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr) || !errors.As(err, &ec) || ec.ExitCode() != 2 || ran):
		t.Errorf("%s %v: %v (action ran: %v), want exit code 2 and %q", env, args, err, ran, wantErr)
	}
}

// TestMetricsListenRefusedAsUsage: a --metrics-listen (DL_METRICS_LISTEN)
// that can name no address to listen on (a port out of range, a host
// without its port) is a usage error, exit 2, naming the flag and its
// variable, before anything runs; it used to fail (exit 1, which systemd
// restarts) with net's message alone, once the terminal and the options
// were set up.
func TestMetricsListenRefusedAsUsage(t *testing.T) {
	t.Setenv("DL_METRICS_LISTEN", "") // restored after the test
	os.Unsetenv("DL_METRICS_LISTEN")
	tests := []struct {
		env     string
		args    []string
		wantErr string
	}{
		{"", []string{"--metrics-listen", "99999"}, `--metrics-listen (DL_METRICS_LISTEN): listen address "99999"`},
		{"", []string{"--metrics-listen", "127.0.0.1:70000"}, `--metrics-listen (DL_METRICS_LISTEN): listen address "127.0.0.1:70000"`},
		{"localhost", nil, `--metrics-listen (DL_METRICS_LISTEN): listen address "localhost"`},
		{"a:b:c", nil, `--metrics-listen (DL_METRICS_LISTEN): listen address "a:b:c"`},
		{"", []string{"--metrics-listen", "9501"}, ""},
		{"", []string{"--metrics-listen", "0.0.0.0:9501"}, ""},
		{"[::1]:0", nil, ""},
		{"", nil, ""}, // off
	}
	for _, tt := range tests {
		if tt.env != "" {
			t.Setenv("DL_METRICS_LISTEN", tt.env)
		}
		checkUsage(t, FetchFlags(), "DL_METRICS_LISTEN="+tt.env, tt.args, tt.wantErr)
		os.Unsetenv("DL_METRICS_LISTEN")
	}
}

// TestMetricsPortTakenNamesTheFlag: a port another process holds fails at
// the start, in a line that says which setting to change.
func TestMetricsPortTakenNamesTheFlag(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	app := &cli.App{Name: "dl-x", Flags: FetchFlags(), ExitErrHandler: noExit, Action: func(c *cli.Context) error {
		_, stop, err := Observe(c, &Terminal{})
		if err == nil {
			stop()
		}
		return err
	}}
	err = app.Run([]string{"dl-x", "--metrics-listen", l.Addr().String()})
	if err == nil || !strings.HasPrefix(err.Error(), "--metrics-listen (DL_METRICS_LISTEN): ") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("metrics on a taken port: %v, want the flag named and the port in use", err)
	}
}
