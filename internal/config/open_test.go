package config

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/dlkit/dl/internal/testenv"
)

// TestOpenWaitsForServices: with --wait-for-services a tool started before
// its Redis or MySQL accepts connections waits for them (a host booting
// before its database), up to the bound; without it, it fails at once.
func TestOpenWaitsForServices(t *testing.T) {
	redisURL, stop, start := testenv.StartRedisServer(t)
	stop()
	// A port nothing listens on, for a MySQL that never comes.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noMySQL := "root@tcp(" + l.Addr().String() + ")/dl_wait"
	l.Close()

	run := func(open func(*cli.Context) error, args ...string) (time.Duration, error) {
		t.Helper()
		app := &cli.App{Name: "dl-x", Flags: append([]cli.Flag{MySQLFlag(), TableFlag(), WaitFlag()}, RedisFlags()...), ExitErrHandler: noExit, Action: open}
		began := time.Now()
		err := app.Run(append([]string{"dl-x", "--redis", redisURL, "--mysql", noMySQL}, args...))
		return time.Since(began), err
	}
	openQueue := func(c *cli.Context) error {
		q, err := OpenQueue(c)
		if err == nil {
			q.Close()
		}
		return err
	}
	openStore := func(c *cli.Context) error {
		st, err := OpenStore(c)
		if err == nil {
			st.Close()
		}
		return err
	}

	if took, err := run(openQueue); err == nil || !strings.Contains(err.Error(), "connection refused") || took > 5*time.Second {
		t.Fatalf("without a wait: %v after %v, want connection refused at once", err, took)
	}
	if took, err := run(openStore, "--wait-for-services", "1s"); err == nil || !strings.Contains(err.Error(), "(waited 1s for it)") || took < time.Second {
		t.Fatalf("a MySQL that never comes: %v after %v, want the refusal after waiting 1s", err, took)
	}
	// Redis comes up while the tool waits: the open succeeds.
	const late = 700 * time.Millisecond
	timer := time.AfterFunc(late, start)
	defer timer.Stop()
	if took, err := run(openQueue, "--wait-for-services", "2m"); err != nil || took < late {
		t.Fatalf("a Redis that comes up after %v: %v after %v, want it opened once it was up", late, err, took)
	}
}
