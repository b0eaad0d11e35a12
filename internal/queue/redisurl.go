package queue

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The forms of DL_REDIS_URL, by scheme:
//
//	redis://[[user]:password@]host:port[/db]        one server (rediss:// for TLS, unix:///path.sock)
//	redis-cluster://[[user]:password@]h1:p1,h2:p2,…  Redis Cluster: any reachable nodes seed the
//	                                                topology (rediss-cluster:// for TLS)
//	redis-sentinel://[[user]:password@]s1:p1,s2:p2[/db]?master_name=NAME
//	                                                Redis Sentinel: the sentinels and the
//	                                                monitored master's name (rediss-sentinel://)
//
// The user and password are always those of the servers that hold the data;
// sentinels that require a password of their own take sentinel_username and
// sentinel_password query parameters. Other query parameters are go-redis's
// own options (dial_timeout=3s, pool_size=20, …).
const (
	schemeCluster  = "redis-cluster"
	schemeSentinel = "redis-sentinel"
)

// mode is the kind of deployment a URL names.
type mode int

const (
	single mode = iota
	cluster
	sentinel
)

// Timeouts that keep a tool from hanging on a Redis that does not answer;
// BLPOP adds its own wait to the read timeout.
const (
	dialTimeout   = 5 * time.Second
	readTimeout   = 10 * time.Second
	maxRetries    = 1
	dialerRetries = 2
)

// newClient builds the client that rawURL names, with dl's timeouts.
func newClient(rawURL string) (redis.UniversalClient, mode, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, single, errors.New("not a URL (a list of hosts needs host:port for each)")
	}
	base, tls := strings.CutPrefix(u.Scheme, "rediss")
	if !tls {
		base = strings.TrimPrefix(u.Scheme, "redis")
	}
	scheme := "redis"
	if tls {
		scheme = "rediss"
	}
	switch base {
	case "-cluster":
		if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
			return nil, cluster, fmt.Errorf("database %q: Redis Cluster has only database 0", p)
		}
		v := *u
		v.Path = ""
		opt, err := redis.ParseClusterURL(goRedisURL(&v, scheme))
		if err != nil {
			return nil, cluster, err
		}
		opt.DialTimeout, opt.ReadTimeout = orDefault(opt.DialTimeout, dialTimeout), orDefault(opt.ReadTimeout, readTimeout)
		opt.MaxRetries, opt.DialerRetries = orDefault(opt.MaxRetries, maxRetries), orDefault(opt.DialerRetries, dialerRetries)
		return redis.NewClusterClient(opt), cluster, nil
	case "-sentinel":
		// go-redis reads the URL's user and password as the sentinels'; ours
		// are the data servers', as in every other form.
		q := u.Query()
		sUser, sPass := q.Get("sentinel_username"), q.Get("sentinel_password")
		q.Del("sentinel_username")
		q.Del("sentinel_password")
		v := *u
		v.RawQuery = q.Encode()
		user, pass := v.User.Username(), ""
		if p, ok := v.User.Password(); ok {
			pass = p
		}
		v.User = nil
		opt, err := redis.ParseFailoverURL(goRedisURL(&v, scheme))
		if err != nil {
			return nil, sentinel, err
		}
		if opt.MasterName == "" {
			return nil, sentinel, errors.New("redis-sentinel:// needs ?master_name=NAME (the name the sentinels monitor)")
		}
		opt.Username, opt.Password, opt.SentinelUsername, opt.SentinelPassword = user, pass, sUser, sPass
		opt.DialTimeout, opt.ReadTimeout = orDefault(opt.DialTimeout, dialTimeout), orDefault(opt.ReadTimeout, readTimeout)
		opt.MaxRetries, opt.DialerRetries = orDefault(opt.MaxRetries, maxRetries), orDefault(opt.DialerRetries, dialerRetries)
		return redis.NewFailoverClient(opt), sentinel, nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, single, err
	}
	opt.DialTimeout, opt.ReadTimeout = orDefault(opt.DialTimeout, dialTimeout), orDefault(opt.ReadTimeout, readTimeout)
	opt.MaxRetries, opt.DialerRetries = orDefault(opt.MaxRetries, maxRetries), orDefault(opt.DialerRetries, dialerRetries)
	return redis.NewClient(opt), single, nil
}

// goRedisURL rewrites our comma-separated host list as go-redis's first host
// plus one addr parameter per further host.
func goRedisURL(u *url.URL, scheme string) string {
	hosts := strings.Split(u.Host, ",")
	v := *u
	v.Scheme, v.Host = scheme, hosts[0]
	q := v.Query()
	for _, h := range hosts[1:] {
		if h = strings.TrimSpace(h); h != "" {
			q.Add("addr", h)
		}
	}
	v.RawQuery = q.Encode()
	return v.String()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// hashTag is the part of a key that Redis Cluster hashes: the text between
// the first '{' and the next '}', when that is not empty.
func hashTag(key string) string {
	_, rest, ok := strings.Cut(key, "{")
	if !ok {
		return ""
	}
	tag, _, ok := strings.Cut(rest, "}")
	if !ok {
		return ""
	}
	return tag
}

// inOneSlot returns keys whose names all hash to one Redis Cluster slot, so
// that every multi-key command, transaction and script over a pipeline's keys
// is allowed in cluster mode. Names that already share a {tag} are kept;
// names without any tag get the queue's name as their tag
// ({download_queue}, {download_queue}download_exit_flag, …).
func (k Keys) inOneSlot() (Keys, error) {
	qt, pt := hashTag(k.Queue), hashTag(k.prefix)
	switch {
	case qt != "" && qt == pt:
		return k, nil
	case qt == "" && pt == "":
		tag := "{" + k.Queue + "}"
		return NewKeys(tag, tag+k.prefix), nil
	}
	return k, fmt.Errorf("in Redis Cluster the queue %q and the key prefix %q must carry the same {hash tag}, or neither does", k.Queue, k.prefix)
}
