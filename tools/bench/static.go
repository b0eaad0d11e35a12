package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dlkit/dl/internal/origin"
)

// staticOrigin is nginx serving, with sendfile, files written from the
// origin's generator: the way production origins serve static files. On
// one machine the origin shares the cores with the tool it serves, and
// dl-origin, which generates every byte and answers through Go's net/http,
// takes about as much CPU per small file as curl does; a client that can use
// both cores (dl-fetch) then gets less of them than a single-threaded one
// (curl) can use. The static workloads (2s, 4s) show each tool's rate when the
// origin costs little, as a remote one costs nothing here. The content and
// so the sha256 of each file are dl-origin's, and every file is checked.
type staticOrigin struct {
	cmd  *exec.Cmd
	root string // document root: files/<name>
	base string // http://127.0.0.1:port
	done chan struct{}

	stopped sync.Once
}

// nginxConf keeps everything nginx writes inside dir, runs one process in
// the foreground and logs no requests.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  default_type application/octet-stream;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  server {
    listen 127.0.0.1:%[2]d;
    root %[3]s;
  }
}
`

// startStatic starts nginx with its document root under rootParent (a
// tmpfs, so that dropping the page cache before a large-file run leaves the
// origin's files in memory) and its configuration and logs in confDir, on a
// loopback port that ports picks (freePort).
func startStatic(rootParent, confDir string, ports func() (int, error)) (*staticOrigin, error) {
	nginx, err := nginxBinary()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp(rootParent, "dlbench-static-")
	if err != nil {
		return nil, fmt.Errorf("static origin root: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "files"), 0o755); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("static origin root: %w", err)
	}
	// A file only this nginx serves: what answers on its port is this
	// nginx only if it serves that.
	probe := fmt.Sprintf("dlbench %d %d\n", os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(root, probeName), []byte(probe), 0o644); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("static origin root: %w", err)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		os.RemoveAll(root)
		return nil, fmt.Errorf("nginx directory: %w", err)
	}
	// The port is free when ports picks it, and nginx binds it a moment
	// later: another program may take it in between. Then nginx exits, or
	// the other program answers in its place; either way another port is
	// tried.
	for try := 1; ; try++ {
		port, err := ports()
		if err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		s, err := runNginx(nginx, root, confDir, port, probe)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) || try == 3 {
			os.RemoveAll(root)
			return nil, err
		}
		logf("static origin: %v; trying another port", err)
	}
}

// nginxBinary is nginx on the PATH, or where Debian puts it: /usr/sbin,
// which the PATH of a user other than root lacks.
func nginxBinary() (string, error) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if sbin, err2 := exec.LookPath("/usr/sbin/nginx"); err2 == nil {
			return sbin, nil
		}
		return "", fmt.Errorf("nginx is not installed (apt-get install nginx-light): %w", err)
	}
	return nginx, nil
}

// probeName is the probe file's name in the document root.
const probeName = "dlbench-probe.txt"

// errPortTaken is a port that another program took before nginx bound it.
var errPortTaken = errors.New("port taken by another program")

// runNginx starts nginx on port and waits until it serves probe.
func runNginx(nginx, root, confDir string, port int, probe string) (*staticOrigin, error) {
	conf := filepath.Join(confDir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, confDir, port, root), 0o644); err != nil {
		return nil, fmt.Errorf("nginx configuration: %w", err)
	}
	errorLog, stderrLog := filepath.Join(confDir, "error.log"), filepath.Join(confDir, "stderr.log")
	os.Remove(errorLog) // what it says must be this start's
	cmd := exec.Command(nginx, "-p", confDir, "-e", errorLog, "-c", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(stderrLog)
	if err != nil {
		return nil, fmt.Errorf("nginx log: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	s := &staticOrigin{cmd: cmd, root: root, base: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		select {
		case <-s.done:
			return nil, nginxExited(port, errorLog, stderrLog)
		default:
		}
		resp, err := client.Get(s.base + "/" + probeName)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && string(b) == probe {
				return s, nil
			}
			// Not the probe: another server answered, and this nginx
			// exits once it has given up binding the port (it tries for
			// 2.5s); or this nginx serves something else, and stays.
			select {
			case <-s.done:
				return nil, nginxExited(port, errorLog, stderrLog)
			case <-time.After(10 * time.Second):
				s.kill()
				return nil, fmt.Errorf("nginx on 127.0.0.1:%d answers its probe file with status %d and %q", port, resp.StatusCode, b)
			}
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("nginx did not serve on 127.0.0.1:%d within 20s: %w", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nginxExited is the error of an nginx that exited at start, from its logs:
// errPortTaken when it could not bind its port.
func nginxExited(port int, logs ...string) error {
	for _, p := range logs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "Address already in use") {
			return fmt.Errorf("nginx could not bind 127.0.0.1:%d: %w", port, errPortTaken)
		}
	}
	return fmt.Errorf("nginx exited at start: %s", lastLine(logs...))
}

// freePort asks the kernel for a free loopback port. nginx binds it a moment
// later; another program may take it in between, which startStatic sees.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLine is the last line of the first of paths that has one (tail's).
func lastLine(paths ...string) string {
	for _, p := range paths {
		if l := strings.TrimSpace(tail(p, 1)); l != "" {
			return l
		}
	}
	return "no message"
}

// publish writes rows' content into the document root and returns the rows
// with their URLs on this origin. Each file is origin.Content(name, size),
// the bytes dl-origin serves for the name, so the checks are the same.
func (s *staticOrigin) publish(ctx context.Context, rows []row) ([]row, error) {
	out := make([]row, len(rows))
	err := parallel(len(rows), func(i int) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := rows[i]
		if err := writeContent(filepath.Join(s.root, "files", r.name), r.name, r.size); err != nil {
			return err
		}
		r.url = s.base + "/files/" + r.name
		out[i] = r
		return nil
	})
	return out, err
}

func writeContent(path, name string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	_, err = io.CopyBuffer(f, origin.Content(name, size), make([]byte, 1<<20))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return nil
}

// remove deletes published files (a tmpfs gives its memory back at once).
func (s *staticOrigin) remove(rows []row) {
	for _, r := range rows {
		os.Remove(filepath.Join(s.root, "files", r.name))
	}
}

// stop ends nginx and removes the document root. A second call does
// nothing.
func (s *staticOrigin) stop() {
	s.stopped.Do(func() {
		s.kill()
		os.RemoveAll(s.root)
	})
}

// kill ends nginx: gracefully, then, past 10s, with SIGKILL. Its process
// group is signalled only while nginx has not been waited for, so that the
// group's id is still its own.
func (s *staticOrigin) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// staticRootParent is where the document root goes: /dev/shm when it is a
// tmpfs with room for need bytes, else dir.
func staticRootParent(dir string, need int64) string {
	var st unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &st); err == nil && st.Type == unix.TMPFS_MAGIC &&
		int64(st.Bavail)*int64(st.Bsize) > need+need/4 {
		return "/dev/shm"
	}
	return dir
}

// runStatic is workloads 2 and 4 again, against the static origin: dl-fetch
// and curl on the list, and the large file with dl-fetch (sync off and on)
// and curl, alternating as the others do.
func (b *bench) runStatic(ctx context.Context) {
	need := int64(b.cfg.listN)*4096 + b.cfg.bigSize
	s, err := startStatic(staticRootParent(b.e.work, need), filepath.Join(b.e.work, "nginx"), freePort)
	if err != nil {
		logf("static origin: %v; skipping workloads 2s and 4s", err)
		return
	}
	defer s.stop()
	logf("static origin %s (nginx, sendfile), files in %s", s.base, s.root)

	rows, err := s.publish(ctx, files("", "s", b.cfg.listN, 4096))
	if err != nil {
		logf("static origin: %v; skipping workload 2s", err)
	} else {
		b.sums.prime(rows)
		for rep := range b.cfg.reps {
			for _, t := range rotate([]string{"dl", "curl"}, rep) {
				smp := b.listTool(ctx, "list-static", t, rows, false)
				smp.Rep = rep
				b.add(smp)
			}
		}
	}
	s.remove(rows)

	big, err := s.publish(ctx, files("", "sbig", 1, b.cfg.bigSize))
	if err != nil {
		logf("static origin: %v; skipping workload 4s", err)
		return
	}
	b.sums.prime(big)
	b.bigRuns(ctx, "big-static", big[0], false)
}
