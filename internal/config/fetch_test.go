package config

import (
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

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
		app := &cli.App{Flags: FetchFlags(), Action: func(c *cli.Context) error {
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
