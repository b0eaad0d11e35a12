package systemd_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The scripts that take no arguments print their header for --help and
// refuse anything else before doing anything: an operator's guess at an
// option (scripts/install --help, --prefix) used to run the script, and
// install system-wide.
func TestScriptsHelpAndRefuseArguments(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"install", "demo", "services", "dl-distributor"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			script := filepath.Join(repo(), "scripts", name)
			dest := t.TempDir()
			run := func(arg string) (string, string, int) {
				// Were the argument ignored, install would stage into dest,
				// and the others would run: the bound ends them, and the
				// test fails.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, script, arg)
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
				cmd.WaitDelay = 5 * time.Second
				cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PATH=/usr/bin:/bin", "DL_SKIP_INSTALL=1")
				var out, errOut strings.Builder
				cmd.Stdout, cmd.Stderr = &out, &errOut
				err := cmd.Run()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if ctx.Err() != nil {
					t.Errorf("%s %s still ran after %v: it took the argument for none", name, arg, 20*time.Second)
				}
				return out.String(), errOut.String(), code
			}
			for _, h := range []string{"--help", "-h"} {
				out, errOut, code := run(h)
				if code != 0 || !strings.HasPrefix(out, name+": ") || strings.Contains(out, "\n#") || strings.Contains(out, "--help prints") {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 0 and its header, starting %q", name, h, code, out, errOut, name+": ")
				}
			}
			out, errOut, code := run("--prefix")
			if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, name+": takes no arguments (got --prefix)") {
				t.Errorf("%s --prefix: exit %d, stdout %q, stderr %q; want exit 2 and one line naming the argument", name, code, out, errOut)
			}
			if entries, _ := os.ReadDir(dest); len(entries) > 0 {
				t.Errorf("%s --prefix staged files into DESTDIR: it ran", name)
			}
		})
	}
}
