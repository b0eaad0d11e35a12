package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestURLForms(t *testing.T) {
	for _, tc := range []struct {
		url   string
		mode  mode
		addrs []string
		user  string
		pass  string
		err   string
	}{
		{url: "redis://:pw@127.0.0.1:6379/2", mode: single, addrs: []string{"127.0.0.1:6379"}, pass: "pw"},
		{url: "redis-cluster://u:pw@127.0.0.1:7000,127.0.0.1:7001,h3:7002", mode: cluster,
			addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "h3:7002"}, user: "u", pass: "pw"},
		{url: "rediss-cluster://127.0.0.1:7000?pool_size=3", mode: cluster, addrs: []string{"127.0.0.1:7000"}},
		{url: "redis-cluster://127.0.0.1:7000/1", err: "only database 0"},
		{url: "redis-sentinel://:pw@s1:26379,s2:26380/3?master_name=mymaster&sentinel_password=sp", mode: sentinel,
			addrs: []string{"s1:26379", "s2:26380"}, pass: "pw"},
		{url: "redis-sentinel://s1:26379", err: "master_name"},
		{url: "redis-cluster://h:1?bogus=1", err: "unexpected option"},
		{url: "redis-cluster://h:1,h2", err: "host:port for each"},
	} {
		rdb, m, err := newClient(tc.url)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want one saying %q", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if m != tc.mode {
			t.Errorf("%s: mode %d, want %d", tc.url, m, tc.mode)
		}
		switch c := rdb.(type) {
		case *redis.ClusterClient:
			o := c.Options()
			if strings.Join(o.Addrs, " ") != strings.Join(tc.addrs, " ") || o.Username != tc.user || o.Password != tc.pass {
				t.Errorf("%s: cluster options %v %q %q", tc.url, o.Addrs, o.Username, o.Password)
			}
			if o.DialTimeout != dialTimeout || o.ReadTimeout != readTimeout {
				t.Errorf("%s: timeouts %v %v", tc.url, o.DialTimeout, o.ReadTimeout)
			}
		case *redis.Client:
			o := c.Options()
			if m == single && (o.Addr != tc.addrs[0] || o.Password != tc.pass || o.DB != 2) {
				t.Errorf("%s: options %q %q db %d", tc.url, o.Addr, o.Password, o.DB)
			}
			if m == sentinel && (o.Password != tc.pass || o.DB != 3) {
				t.Errorf("%s: sentinel's master options password %q db %d", tc.url, o.Password, o.DB)
			}
		default:
			t.Errorf("%s: client %T", tc.url, rdb)
		}
		rdb.Close()
	}
}

// TestRedactHidesEverySecret: a Redis URL in a message or a log line keeps
// its servers and options but no secret: no password, wherever it is given,
// and no user name given alone (redis://TOKEN@host, as hosted services hand
// out, or the sentinels' sentinel_username=TOKEN), which is a token as often
// as a name; in every form of the URL.
// Open's errors name the server the same way.
func TestRedactHidesEverySecret(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"redis://TOKEN@127.0.0.1:6379/0", "redis://xxxxx@127.0.0.1:6379/0"},
		{"redis://TOKEN:@127.0.0.1:6379/0", "redis://xxxxx@127.0.0.1:6379/0"},
		{"rediss://TOKEN@127.0.0.1:6380/1?dial_timeout=3s", "rediss://xxxxx@127.0.0.1:6380/1?dial_timeout=3s"},
		{"redis://:SECRET@127.0.0.1:6379/0", "redis://:xxxxx@127.0.0.1:6379/0"},
		{"redis://dl:SECRET@127.0.0.1:6379/0", "redis://dl:xxxxx@127.0.0.1:6379/0"},
		{"unix://TOKEN@/run/redis/redis.sock?db=1", "unix://xxxxx@/run/redis/redis.sock?db=1"},
		{"redis-cluster://TOKEN@127.0.0.1:7000,127.0.0.1:7001", "redis-cluster://xxxxx@127.0.0.1:7000,127.0.0.1:7001"},
		{"rediss-cluster://dl:SECRET@127.0.0.1:7000,127.0.0.1:7001", "rediss-cluster://dl:xxxxx@127.0.0.1:7000,127.0.0.1:7001"},
		{"redis-sentinel://TOKEN@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m",
			"redis-sentinel://xxxxx@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m"},
		{"redis-sentinel://:SECRET1@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m&sentinel_password=SECRET2&password=SECRET3",
			"redis-sentinel://:xxxxx@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m&password=xxxxx&sentinel_password=xxxxx"},
		// The sentinels' own user name and password, in the query, by
		// the same rule.
		{"redis-sentinel://TOKEN@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m&sentinel_username=TOKEN2&sentinel_username=TOKEN3",
			"redis-sentinel://xxxxx@127.0.0.1:26379,127.0.0.1:26380/0?master_name=m&sentinel_username=xxxxx"},
		{"redis-sentinel://127.0.0.1:26379/0?sentinel_password=&sentinel_username=TOKEN&master_name=m",
			"redis-sentinel://127.0.0.1:26379/0?master_name=m&sentinel_password=&sentinel_username=xxxxx"},
		{"redis-sentinel://dl:SECRET1@127.0.0.1:26379/0?master_name=m&sentinel_username=watcher&sentinel_password=SECRET2",
			"redis-sentinel://dl:xxxxx@127.0.0.1:26379/0?master_name=m&sentinel_password=xxxxx&sentinel_username=watcher"},
		{"redis://TOKEN@127.0.0.1:63x9/0", "(unparseable URL)"},
	} {
		if got := Redact(tc.url); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.url, got, tc.want)
		}
		// Open fails (nothing listens there, or the URL is refused) and
		// says where without the secret.
		closed := strings.NewReplacer(":6379", ":1", ":6380", ":2", ":7000", ":3", ":7001", ":4", ":26379", ":5", ":26380", ":6").Replace(tc.url)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		q, err := Open(ctx, closed, NewKeys("download_queue", "download_"))
		cancel()
		if err == nil {
			q.Close()
			t.Errorf("Open(%q) succeeded", closed)
		} else if strings.Contains(err.Error(), "TOKEN") || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("Open(%q): %v", closed, err)
		}
	}
}

func TestKeysInOneSlot(t *testing.T) {
	for _, tc := range []struct {
		queue, prefix, wantQueue, wantFlag string
		err                                bool
	}{
		{"download_queue", "download_", "{download_queue}", "{download_queue}download_exit_flag", false},
		{"{p1}queue", "{p1}dl_", "{p1}queue", "{p1}dl_exit_flag", false},
		{"{p1}queue", "{p2}dl_", "", "", true},
		{"queue", "{p2}dl_", "", "", true},
	} {
		k, err := NewKeys(tc.queue, tc.prefix).inOneSlot()
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "hash tag") {
				t.Errorf("%s %s: error %v, want one about the hash tag", tc.queue, tc.prefix, err)
			}
			continue
		}
		if err != nil || k.Queue != tc.wantQueue || k.ExitFlag != tc.wantFlag {
			t.Errorf("%s %s: %+v %v", tc.queue, tc.prefix, k, err)
		}
		if hashTag(k.Result("42")) != hashTag(k.Queue) || hashTag(k.Queue) == "" {
			t.Errorf("%s %s: result key %s is not in the queue's slot", tc.queue, tc.prefix, k.Result("42"))
		}
	}
}
