// Package systemd_test checks the systemd units as installed by
// scripts/install: systemd-analyze verify accepts them with the programs in
// place, and each unit's ExecStart, run here under the test's control with
// the unit's environment pointed at the test's own database and Redis keys,
// does its job and exits 0 when the exit flag is set.
package systemd_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dlkit/dl/internal/testenv"
)

// The version and commit the test builds in.
const (
	testVersion = "v9.8.7-test"
	testCommit  = "0123456789ab"
)

var units = []string{"dl-worker@.service", "dl-distributor.service", "dl.target", "dl-clean.service", "dl-clean.timer"}

// install runs scripts/install once per test process into a DESTDIR of its
// own and returns that root.
var install struct {
	once sync.Once
	root string
	out  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if install.root != "" {
		os.RemoveAll(install.root)
	}
	os.Exit(code)
}

func installed(t *testing.T) string {
	t.Helper()
	install.once.Do(func() {
		install.root, install.err = os.MkdirTemp("", "dl-install-")
		if install.err != nil {
			return
		}
		install.out, install.err = runInstall(install.root)
	})
	if install.err != nil {
		t.Fatalf("scripts/install: %v\n%s", install.err, install.out)
	}
	return install.root
}

func runInstall(destdir string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo(), "scripts", "install"))
	cmd.Env = append(os.Environ(), append([]string{"DESTDIR=" + destdir, "VERSION=" + testVersion, "COMMIT=" + testCommit}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func repo() string {
	dir, _ := os.Getwd()
	return filepath.Dir(dir)
}

// unit is a parsed unit file: section → key → values in order.
type unit map[string]map[string][]string

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// parseUnit reads a unit file as systemd does: [Section] headers, Key=Value
// lines, # and ; comments, and backslash continuations.
func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	var pending string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if pending != "" {
			line, pending = pending+" "+line, ""
		}
		if strings.HasSuffix(line, `\`) {
			pending = strings.TrimSuffix(line, `\`)
			continue
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", path, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// TestVerify runs systemd-analyze verify on every installed unit, inside the
// install root so that the programs the units name are the installed ones.
// It needs no running systemd; any complaint fails the test.
func TestVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is missing: apt-get install systemd")
	}
	root := installed(t)
	// verify --root looks for the units ours depend on (sysinit.target,
	// network-online.target, …) inside the root: give it the host's.
	sys := filepath.Join(root, "usr", "lib", "systemd", "system")
	if _, err := os.Stat(sys); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(sys), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", "/lib/systemd/system", filepath.Dir(sys)).CombinedOutput(); err != nil {
			t.Fatalf("copy the host's units into the root: %v\n%s", err, out)
		}
	}
	for _, name := range units {
		path := filepath.Join(root, "etc", "systemd", "system", name)
		cmd := exec.Command(analyze, "verify", "--root="+root, "--man=no", path)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
	}
	// The check has teeth: a unit whose program is missing fails it.
	worker := filepath.Join(root, "usr", "local", "lib", "dl", "dl-worker")
	if err := os.Rename(worker, worker+".away"); err != nil {
		t.Fatal(err)
	}
	defer os.Rename(worker+".away", worker)
	out, err := exec.Command(analyze, "verify", "--root="+root, "--man=no", filepath.Join(root, "etc", "systemd", "system", "dl-worker@.service")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "dl-worker is not executable") {
		t.Errorf("verify passed a unit whose program is missing: %v\n%s", err, out)
	}
}

// TestUnitPolicy checks the settings the operator relies on, which verify
// cannot judge: restarts, stopping, sandboxing, the target.
func TestUnitPolicy(t *testing.T) {
	dir := filepath.Join(repo(), "systemd")
	for _, name := range []string{"dl-worker@.service", "dl-distributor.service"} {
		u := parseUnit(t, filepath.Join(dir, name))
		want := map[string]string{
			"Restart": "on-failure", "EnvironmentFile": "/etc/dl/dl.env", "NoNewPrivileges": "yes",
			"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "User": "dl", "StateDirectory": "dl",
			"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "Type": "exec", "KillSignal": "SIGTERM",
		}
		for k, v := range want {
			if got := u.get("Service", k); got != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got, v)
			}
		}
		for _, k := range []string{"StartLimitIntervalSec", "StartLimitBurst"} {
			if u.get("Unit", k) == "" {
				t.Errorf("%s: no %s: a unit that keeps failing would restart forever", name, k)
			}
		}
		if u.get("Unit", "PartOf") != "dl.target" || u.get("Install", "WantedBy") != "dl.target" {
			t.Errorf("%s: not tied to dl.target (PartOf %q, WantedBy %q)", name, u.get("Unit", "PartOf"), u.get("Install", "WantedBy"))
		}
	}
	w := parseUnit(t, filepath.Join(dir, "dl-worker@.service"))
	if w.get("Service", "KillMode") != "mixed" {
		t.Errorf("worker KillMode=%q: the script must be the only one signalled (see the unit's comment)", w.get("Service", "KillMode"))
	}
	timeoutStop, err := time.ParseDuration(strings.ReplaceAll(w.get("Service", "TimeoutStopSec"), "min", "m"))
	if err != nil || timeoutStop < 5*time.Minute {
		t.Errorf("worker TimeoutStopSec=%q: too short for downloads in flight", w.get("Service", "TimeoutStopSec"))
	}
	// dl-fetch must end a stop by itself, with time to give its rows back,
	// before systemd kills it: a kill leaves the rows to their leases and
	// counts their deliveries toward the poison limit.
	var stopTimeout string
	for _, v := range w["Service"]["Environment"] {
		if s, ok := strings.CutPrefix(v, "DL_STOP_TIMEOUT="); ok {
			stopTimeout = s
		}
	}
	if d, err := time.ParseDuration(stopTimeout); err != nil || d <= 0 || d > timeoutStop-30*time.Second {
		t.Errorf("worker Environment=DL_STOP_TIMEOUT=%q: want it set, at least 30s below TimeoutStopSec=%s", stopTimeout, timeoutStop)
	}
	if tg := parseUnit(t, filepath.Join(dir, "dl.target")); tg.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("dl.target is not started at boot once enabled")
	}
}

// envFile reads an EnvironmentFile as systemd does for the simple lines an
// operator writes: VAR=value, optionally in single or double quotes.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", path, line)
		}
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		vars[strings.TrimSpace(k)] = v
	}
	return vars
}

// TestEnvExample checks that the example sets what it must, that the shell
// reads it exactly as systemd does (the scripts and the units share it), and
// that it lists every variable a tool or a script reads.
func TestEnvExample(t *testing.T) {
	path := filepath.Join(repo(), "systemd", "dl.env.example")
	vars := envFile(t, path)
	for _, k := range []string{"DL_MYSQL_DSN", "DL_REDIS_URL", "DL_DIR"} {
		if vars[k] == "" {
			t.Errorf("the example does not set %s", k)
		}
	}
	out, err := exec.Command("bash", "-c", `set -a; . "$1"; set +a; env -0`, "bash", path).Output()
	if err != nil {
		t.Fatalf("bash cannot source the example: %v", err)
	}
	shell := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DL_") {
			shell[k] = v
		}
	}
	for k, v := range vars {
		if shell[k] != v {
			t.Errorf("%s: systemd reads %q, the shell %q", k, v, shell[k])
		}
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimLeft(line, "#")
		if k, _, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "DL_") && !strings.Contains(k, " ") {
			listed[k] = true
		}
	}
	root := installed(t)
	need := map[string]string{}
	for _, tool := range []string{"dl-select", "dl-enqueue", "dl-fetch", "dl-mark", "dl-flag", "dl-stat"} {
		md, err := exec.Command(filepath.Join(root, "usr", "local", "bin", tool), "--generate-markdown").Output()
		if err != nil {
			t.Fatalf("%s --generate-markdown: %v", tool, err)
		}
		_, env, _ := strings.Cut(string(md), "# ENVIRONMENT")
		for _, line := range strings.Split(env, "\n") {
			if strings.HasPrefix(line, "**DL") {
				need[strings.ReplaceAll(strings.Trim(line, "*"), `\_`, "_")] = tool
			}
		}
	}
	for _, script := range []string{"dl-worker", "dl-distributor"} {
		b, err := os.ReadFile(filepath.Join(repo(), "scripts", script))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.FieldsFunc(string(b), func(r rune) bool {
			return !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
		}) {
			if strings.HasPrefix(f, "DL_") && !strings.HasSuffix(f, "_") {
				need[f] = script
			}
		}
	}
	var missing []string
	for k, who := range need {
		if !listed[k] {
			missing = append(missing, k+" ("+who+")")
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("systemd/dl.env.example does not list %v", missing)
	}
	if len(need) < 20 {
		t.Errorf("found only %d variables the tools read: %v", len(need), need)
	}
}

// service is one unit's ExecStart, resolved inside the install root, with
// the unit's environment and the test's overrides.
type service struct {
	name string
	argv []string
	env  []string
}

// execStart resolves a unit as systemd would start it: its Environment=
// lines, paths mapped into the install root, then its EnvironmentFile, whose
// settings win over them (systemd.exec); then the test's own settings.
func execStart(t *testing.T, root, name string, overrides map[string]string) service {
	t.Helper()
	u := parseUnit(t, filepath.Join(root, "etc", "systemd", "system", name))
	vars := map[string]string{}
	for _, e := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		if strings.HasPrefix(v, "/") {
			v = filepath.Join(root, v)
		}
		vars[k] = v
	}
	for _, f := range u["Service"]["EnvironmentFile"] {
		for k, v := range envFile(t, filepath.Join(root, strings.TrimPrefix(f, "-"))) {
			vars[k] = v
		}
	}
	for k, v := range overrides {
		vars[k] = v
	}
	argv := strings.Fields(u.get("Service", "ExecStart"))
	if len(argv) == 0 || !strings.HasPrefix(argv[0], "/") {
		t.Fatalf("%s: ExecStart %q is not an absolute path", name, u.get("Service", "ExecStart"))
	}
	argv[0] = filepath.Join(root, argv[0])
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DL_") {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return service{name: name, argv: argv, env: env}
}

// TestExecStartEnvironmentOrder checks the harness against systemd.exec:
// a variable that EnvironmentFile= sets wins over the unit's Environment=,
// whichever line comes first in the unit; the test's overrides win over
// both.
func TestExecStartEnvironmentOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		unit string
	}{
		{"file after", "Environment=DL_A=/unit\nEnvironment=DL_B=unit\nEnvironmentFile=/etc/dl/dl.env\n"},
		{"file before", "EnvironmentFile=/etc/dl/dl.env\nEnvironment=DL_A=/unit\nEnvironment=DL_B=unit\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for path, text := range map[string]string{
				"etc/systemd/system/x.service": "[Service]\n" + tc.unit + "Environment=DL_C=/unit\nEnvironment=DL_D=unit\nExecStart=/bin/x\n",
				"etc/dl/dl.env":                "DL_A=file\nDL_B='file'\nDL_C=/file\nDL_D=file\n",
			} {
				p := filepath.Join(root, path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{}
			for _, kv := range execStart(t, root, "x.service", map[string]string{"DL_D": "test"}).env {
				if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "DL_") {
					env[k] = v
				}
			}
			want := map[string]string{"DL_A": "file", "DL_B": "file", "DL_C": "/file", "DL_D": "test"}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("%s=%q, want %q (systemd: EnvironmentFile= wins over Environment=)", k, env[k], v)
				}
			}
		})
	}
}

// proc is a started service: its main process leads a process group, as
// the unit's control group holds its processes.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *testenv.SyncBuffer
	done   chan struct{}
}

func start(t *testing.T, s service, dir string) *proc {
	t.Helper()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Env, cmd.Dir = s.env, dir
	p := &proc{name: s.name, cmd: cmd, stderr: &testenv.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	go func() {
		_ = cmd.Wait() // reported through ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// wait waits for the main process and then for the rest of its group (what
// systemd waits for before it calls the unit stopped), and returns the main
// process's exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGQUIT)
		t.Fatalf("%s still running after %v; its output:\n%s", p.name, timeout, p.stderr)
	}
	testenv.Eventually(t, timeout, 50*time.Millisecond, func() bool {
		return syscall.Kill(-p.cmd.Process.Pid, 0) == syscall.ESRCH
	}, "%s's processes to end after its main process", p.name)
	return p.cmd.ProcessState.ExitCode()
}

// TestCleanUnitRemovesLeftoverParts runs dl-clean.service's ExecStart as the
// timer would, with the unit's environment: an old part and its sidecar go,
// a finished file and a fresh part stay. The timer is checked for what the
// operator relies on: it is installed with the service and catches up after
// downtime.
func TestCleanUnitRemovesLeftoverParts(t *testing.T) {
	root := installed(t)
	dir := t.TempDir()
	old := time.Now().Add(-30 * 24 * time.Hour)
	files := map[string]bool{ // path under dir → removed
		"abc/k-a.iso.part": true, "abc/k-a.iso.part.meta": true,
		"abc/k-b.iso": false, "abd/k-c.iso.part": false, "abd/k-c.iso.part.meta": false,
	}
	for name, aged := range files {
		p := filepath.Join(dir, name)
		text := "bytes"
		if strings.HasSuffix(name, ".meta") {
			text = `{"url":"http://127.0.0.1/x","size":-1}`
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if aged || name == "abc/k-b.iso" {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	p := start(t, execStart(t, root, "dl-clean.service", map[string]string{"DL_DIR": dir}), dir)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("dl-clean.service exited %d:\n%s", code, p.stderr)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s removed %v, want %v (%v)\n%s", name, gone, removed, err, p.stderr)
		}
	}
	s := parseUnit(t, filepath.Join(repo(), "systemd", "dl-clean.service"))
	for k, v := range map[string]string{"Type": "oneshot", "User": "dl", "EnvironmentFile": "/etc/dl/dl.env", "ProtectSystem": "strict", "PrivateNetwork": "yes"} {
		if got := s.get("Service", k); got != v {
			t.Errorf("dl-clean.service: %s=%q, want %q", k, got, v)
		}
	}
	tm := parseUnit(t, filepath.Join(repo(), "systemd", "dl-clean.timer"))
	if tm.get("Timer", "OnCalendar") == "" || tm.get("Timer", "Persistent") != "true" || tm.get("Install", "WantedBy") != "timers.target" {
		t.Errorf("dl-clean.timer: OnCalendar %q, Persistent %q, WantedBy %q", tm.get("Timer", "OnCalendar"), tm.get("Timer", "Persistent"), tm.get("Install", "WantedBy"))
	}
}
