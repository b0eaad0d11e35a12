package queue

import (
	"strings"
	"testing"

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

func TestRedactHidesEveryPassword(t *testing.T) {
	got := Redact("redis-sentinel://:pw1@s1:26379,s2:26379/0?master_name=m&sentinel_password=pw2&password=pw3")
	if strings.Contains(got, "pw") || !strings.Contains(got, "s1:26379,s2:26379") {
		t.Fatalf("redacted %q", got)
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
