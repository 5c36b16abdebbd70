package redact_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/dynamodb"
	"github.com/eventkit/eventstore/drivers/kurrentdb"
	"github.com/eventkit/eventstore/drivers/memory"
	"github.com/eventkit/eventstore/drivers/postgres"
	"github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/redact"
	"github.com/jackc/pgx/v5/pgconn"
	kdb "github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
)

// A store URL's every part but the secret. The host is a closed port on
// the loopback interface and the path a directory that does not exist, so
// an Open that gets past parsing fails at once and writes nothing.
const (
	host = "127.0.0.1:1"
	path = "/nonexistent-evs-fuzz/db"
)

// secretKeys are query parameters whose values the redaction must mask.
var secretKeys = []string{"password", "PASSWORD", "sslpassword", "token", "secret", "aws_secret_access_key", "aws_session_token", "pass%77ord"}

// A shape places a secret s in one position of a connection string that
// may hold one, raw (as a user might type it) or escaped; other is a
// non-secret parameter value, itself fuzzed. key is the query parameter
// that holds the secret, empty for a userinfo password or a keyword/value
// string.
type shape func(scheme, s, other string) (raw, key string)

// noSlashes is the shape of a userinfo without "//".
const noSlashes = 3

var shapes = []shape{
	func(scheme, s, other string) (string, string) {
		return scheme + "://u:" + s + "@" + host + path + "?connect_timeout=1", ""
	},
	func(scheme, s, other string) (string, string) {
		return (&url.URL{Scheme: scheme, User: url.UserPassword("u", s), Host: host, Path: path, RawQuery: "connect_timeout=1"}).String(), ""
	},
	func(scheme, s, other string) (string, string) {
		return scheme + "://u:" + s + "@" + host + "?maxdiscoverattempts=1", "" // KurrentDB dials once, not 10 times
	},
	func(scheme, s, other string) (string, string) { return scheme + ":u:" + s + "@" + host + path, "" },
	func(scheme, s, other string) (string, string) {
		key := secretKeys[len(other)%len(secretKeys)]
		return scheme + "://" + host + path + "?" + key + "=" + s, key
	},
	func(scheme, s, other string) (string, string) {
		key := secretKeys[len(s)%len(secretKeys)]
		return scheme + "://" + host + path + "?schema=" + other + "&" + key + "=" + s + "&connect_timeout=1", key
	},
	func(scheme, s, other string) (string, string) {
		return scheme + "://" + host + path + "?password=" + url.QueryEscape(s) + "&schema=" + url.QueryEscape(other), "password"
	},
	func(scheme, s, other string) (string, string) {
		return scheme + "://u:" + s + "@" + host + path + "?namespace=" + other + "&token=" + s, "token"
	},
	func(scheme, s, other string) (string, string) {
		return scheme + "://" + host + "?endpoint=http://u:" + s + "@" + host + "&region=" + other, "endpoint"
	},
	func(scheme, s, other string) (string, string) {
		return scheme + "://" + host + "?endpoint=" + url.QueryEscape("http://u:"+s+"@"+host), "endpoint"
	},
	func(scheme, s, other string) (string, string) {
		return "host=127.0.0.1 port=1 password=" + s + " dbname=" + other, ""
	},
	func(scheme, s, other string) (string, string) {
		return "host=127.0.0.1 port=1 password='" + s + "' dbname=" + other, ""
	},
	func(scheme, s, other string) (string, string) { return "password=" + s + " host=127.0.0.1", "" },
}

// mask is what redaction prints in place of a secret.
const mask = "xxxxx"

// drivers lists the schemes of each driver, so that each shape opens a
// store on every driver equally often, whatever its number of schemes.
var drivers = [][]string{{memory.Scheme}, {sqlite.Scheme}, {postgres.Scheme, postgres.SchemeAlias}, {dynamodb.Scheme}, {
	kurrentdb.Scheme, kurrentdb.Scheme + "+discover", "kurrent", "kurrent+discover", "kdb", "kdb+discover", "esdb", "esdb+discover",
}}

func TestDriversListsEveryScheme(t *testing.T) {
	for _, s := range eventstore.Schemes() {
		if !slices.ContainsFunc(drivers, func(d []string) bool { return slices.Contains(d, s) }) {
			t.Errorf("scheme %q is missing from drivers: FuzzSecretNeverShown never opens it", s)
		}
	}
}

// driverSecret reports whether the driver of scheme reads the value of the
// query parameter key as a secret, so that its errors must not show it.
// The PostgreSQL driver hands every parameter but its own to pgx, which
// sends unknown ones to the server as settings and quotes the connection
// string in its parse errors with only password and sslpassword masked.
// The other drivers reject parameters they do not know, naming only the
// parameter.
func driverSecret(scheme, key string) bool {
	switch scheme {
	case "postgres", "postgresql":
		k, err := url.QueryUnescape(key)
		return key == "" || err == nil && (k == "password" || k == "sslpassword")
	}
	return true
}

// FuzzSecretNeverShown builds store URLs around a secret and checks that
// neither redact.URL, eventstore.RedactURL nor the error of eventstore.Open
// (for every registered scheme) shows it, raw or escaped.
func FuzzSecretNeverShown(f *testing.F) {
	// The leaks found so far: a ';' or a bad escape in the query, and a
	// '#', '/' or '?' in a password.
	for _, s := range []string{
		"s3cret", "12#s3cret", "12/s3cret", "12?s3cret", "s3cret;x", "x;s3cret", "s3cret%zz", "%zzs3cret",
		"s3 cret", "s3'cret", `s3"cret`, "s3@cret", "s3:cret", "s3&cret=x", "s3cret\xff\xfe", "s3cret\n",
		"12?password=x@s3cret", "s3cret/..", "%41%42s3cret", "+s3cret+", "#", "@@@@", "////",
		"&000", "s3cret&x", // an '&' in a secret splits the query pair
		"xxxx", "xxx&", // the mask and its neighbour hold them: not a leak
	} {
		f.Add(s, "orders")
		f.Add(s, "a;b")
		f.Add(s, "a%zz")
		f.Add(s, "a#b") // pushes the secret into a fragment, which pgx reads as the database
	}
	f.Chdir(f.TempDir()) // a relative SQLite path lands here, if anywhere
	f.Fuzz(func(t *testing.T, secret, other string) {
		if len(secret) < 4 {
			return
		}
		schemes := eventstore.Schemes() // sorted
		for i, shape := range shapes {
			for _, scheme := range schemes {
				if i == noSlashes && scheme == "sqlite" {
					continue // sqlite:a:b@c is the relative path "a:b@c", quoted in errors
				}
				raw, key := shape(scheme, secret, other)
				benign, _ := shape(scheme, "Zq9Wv", other)
				// The forms of the secret that must not show: as given,
				// and as the URL writer escapes it.
				var forms []string
				for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("u", secret).String()[2:]} {
					// A form inside the mask ("xxxx") is the mask, not the secret.
					if len(form) >= 4 && !strings.Contains(benign, form) && !strings.Contains(strings.Replace(raw, secret, "", 1), form) &&
						!strings.Contains(mask, form) {
						forms = append(forms, form)
					}
				}
				if len(forms) == 0 {
					continue
				}
				check := func(what, out, baseline string) {
					for _, form := range forms {
						// The mask is not the secret: "xxx&" found in
						// "password=xxxxx&" is the mask and the next
						// separator. A form holding the whole mask is
						// still looked for as printed.
						hay := out
						if !strings.Contains(form, mask) {
							hay = strings.ReplaceAll(out, mask, "\x00")
						}
						if strings.Contains(hay, form) && !strings.Contains(baseline, form) {
							t.Errorf("shape %d, %s of %q shows the secret %q: %s", i, what, raw, form, out)
						}
					}
				}
				check("redact.URL", redact.URL(raw), "")
				check("eventstore.RedactURL", eventstore.RedactURL(raw), "")
				// Opening is slow (a refused connection for the server
				// drivers): each shape opens with one scheme, chosen by
				// the input.
				d := drivers[(len(secret)+len(other)+i)%len(drivers)]
				if scheme != d[(7*len(secret)+i)%len(d)] || !driverSecret(scheme, key) || !offline(raw) {
					continue
				}
				if out := openErr(t, raw); slices.ContainsFunc(forms, func(form string) bool { return strings.Contains(out, form) }) {
					// The text of the same error around a benign secret:
					// what shows there is not the secret's doing.
					check("eventstore.Open", out, openErr(t, benign))
				}
			}
		}
	})
}

// offline reports whether opening rawURL reaches no host but the closed
// port: Open fails before a driver sees the URL, the driver is local (its
// paths are under a directory that does not exist), or the URL names that
// host alone and no parameter can name another one.
func offline(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || !slices.Contains(eventstore.Schemes(), strings.ToLower(u.Scheme)) {
		return true
	}
	switch strings.ToLower(u.Scheme) {
	case "memory", "sqlite":
		return true
	}
	lower := strings.ToLower(u.RawQuery)
	for _, word := range []string{"host", "port", "service", "endpoint"} {
		if strings.Contains(lower, word) {
			return false
		}
	}
	return u.Host == host
}

// openErr opens rawURL, closes the store if that worked, and returns the
// error text.
func openErr(t *testing.T, rawURL string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := eventstore.Open(ctx, rawURL)
	if err != nil {
		return err.Error()
	}
	if err := s.Close(); err != nil {
		return err.Error()
	}
	return ""
}

// FuzzURL checks redact.URL on any string against the parsers that read
// passwords out of it: whatever the standard parser (leniently), pgx or the
// KurrentDB client takes for a password or a secret parameter's value does
// not show in the output. The output is also stable: redacting it again
// changes nothing.
func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"postgres://user:s3cret@localhost:5432/db",
		"postgres://h/db?schema=orders;password=s3cret",
		"postgres://h/db?password=s3cret%zz",
		"postgres://u:12#s3cret@localhost/db",
		"postgres://u:12/s3cret@localhost/db",
		"postgres://u:12?s3cret@localhost/db",
		"postgres://h/db?schema=a#&password=s3cret",
		"postgres:u:12?s3cret@localhost/db",
		"dynamodb://t?endpoint=http%3A%2F%2Fu%3A12%23s3cret%40localhost",
		"host=localhost user=u password=s3cret dbname=db",
		"password=s3cret:x host=h",
		"host=h password='s3 cret#'",
		"kurrentdb://admin:s3cret@localhost:2113?tls=false",
		"esdb+discover://admin:s3cret@a:2113,b:2113?tls=false&token=s3cret2",
		"memory://",
		"sqlite:events.db?synchronous=normal",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := redact.URL(raw)
		if again := redact.URL(out); again != out {
			t.Errorf("URL(%q) = %q, but URL(%q) = %q", raw, out, out, again)
		}
		var secrets []string
		if u, err := url.Parse(raw); err == nil {
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			}
			for k, vs := range u.Query() {
				if k := strings.ToLower(k); strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token") {
					secrets = append(secrets, vs...)
				}
			}
		}
		if !strings.Contains(strings.ToLower(raw), "service") && !strings.Contains(strings.ToLower(raw), "passfile") {
			if c, err := pgconn.ParseConfig(raw); err == nil {
				secrets = append(secrets, c.Password)
				for k, v := range c.RuntimeParams {
					if k := strings.ToLower(k); strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token") {
						secrets = append(secrets, v)
					}
				}
			}
		}
		if c, err := kdb.ParseConnectionString(raw); err == nil {
			secrets = append(secrets, c.Password)
		}
		for _, s := range secrets {
			// Only a secret written once and nowhere else can be told
			// apart from the rest of the string.
			if len(s) < 4 || strings.Count(raw, s) != 1 || strings.Contains(redact.URL(strings.Replace(raw, s, "", 1)), s) {
				continue
			}
			if strings.Contains(out, s) {
				t.Errorf("URL(%q) = %q shows the secret %q", raw, out, s)
			}
		}
	})
}
