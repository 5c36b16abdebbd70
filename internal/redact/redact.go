// Package redact masks secrets in URLs before they reach an error or a log.
//
// A URL is masked part by part only when it parses strictly: the standard
// parser accepts it, its query has no pair that url.ParseQuery rejects (a
// ';' or a bad '%' escape, which the lenient url.URL.Query silently drops),
// it has no fragment, and no '@' follows its authority (or appears at all
// when it has none). Otherwise a password may have been split across parts
// (an unescaped '#', '/' or '?' in it) and the URL is reduced to its scheme.
package redact

import (
	"net/url"
	"strings"
)

const mask = "xxxxx"

// secretParams are the fragments of query parameter names whose values are
// masked, matched case-insensitively anywhere in the name: password,
// sslpassword, passwd, passphrase; pwd; secret, aws_secret_access_key;
// token, aws_session_token; key, sslkey, apikey, userkeyfile; credential;
// auth, authorization; signature.
var secretParams = []string{"pass", "pwd", "secret", "token", "key", "credential", "auth", "signature"}

// URL returns rawURL with the userinfo password and the values of
// secret-looking query parameters replaced by "xxxxx"; the value of any
// other parameter is masked the same way, recursively, so a URL given as a
// parameter loses its password too. A string that does not parse strictly
// (see the package documentation), and any string no URL parser reads as
// one (a keyword/value connection string such as "host=h password=pw", any
// string without a scheme holding '=', or "user:pw@host" without "//"), is
// reduced to its scheme: "postgres:xxxxx",
// or just "xxxxx". A URL without secrets is returned exactly as given.
func URL(rawURL string) string {
	out, ok := strict(rawURL)
	if !ok {
		return schemeOnly(rawURL)
	}
	return out
}

// String is [URL] for a parsed URL; u is not modified.
func String(u *url.URL) string { return URL(u.String()) }

// strict returns the masked form of rawURL; ok is false when rawURL does
// not parse strictly, and then out must not be used.
func strict(rawURL string) (out string, ok bool) {
	u, err := url.Parse(rawURL)
	if err != nil || strings.Contains(rawURL, "#") {
		return "", false
	}
	if u.Scheme == "" && strings.Contains(rawURL, "=") ||
		strings.ContainsAny(u.Opaque, "@=") || strings.ContainsAny(u.Path, "@=") || strings.Contains(u.Host, "=") ||
		u.User != nil && strings.Contains(u.User.Username(), "=") {
		return "", false // keyword/value, or userinfo where no parser looks for one
	}
	if afterAuthority(rawURL, u.Scheme) || keywordSecret(rawURL) {
		return "", false
	}
	changed := false
	c := *u
	if c.User != nil {
		if _, has := c.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), mask)
			changed = true
		}
	}
	if c.RawQuery != "" {
		q, qchanged, ok := query(c.RawQuery)
		if !ok {
			return "", false
		}
		if qchanged {
			c.RawQuery = q
			changed = true
		}
	}
	if !changed {
		return rawURL, true // as given: re-encoding would change it (memory:// → memory:)
	}
	return c.String(), true
}

// afterAuthority reports whether an '@' follows the authority of rawURL
// (the part after "//" up to the first '/' or '?'), or appears at all in a
// URL without one. Then the userinfo password may have held a '/' or '?',
// and the parser has put part of it in the host, the path or the query.
func afterAuthority(rawURL, scheme string) bool {
	rest := rawURL[len(scheme):]
	if scheme != "" {
		rest = rest[1:] // the ':'
	}
	if !strings.HasPrefix(rest, "//") {
		return strings.Contains(rest, "@")
	}
	rest = rest[2:]
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		return strings.Contains(rest[i:], "@")
	}
	return false
}

// query masks a raw query pair by pair, keeping their order and spelling.
// ok is false when a pair does not parse strictly, or when a secret's value
// is empty or followed by a pair without '=' while more pairs follow: its
// '&' may have been part of the secret.
func query(raw string) (masked string, changed, ok bool) {
	if _, err := url.ParseQuery(raw); err != nil {
		return "", false, false
	}
	pairs := strings.Split(raw, "&")
	for i, p := range pairs {
		rk, rv, hasValue := strings.Cut(p, "=")
		k, err1 := url.QueryUnescape(rk)
		v, err2 := url.QueryUnescape(rv)
		if err1 != nil || err2 != nil {
			return "", false, false
		}
		switch {
		case isSecret(k) && i+1 < len(pairs) && (rv == "" || !strings.Contains(pairs[i+1], "=")):
			// "secret=&x" or "secret=a&b": the secret itself may have held
			// the '&' that split it.
			return "", false, false
		case isSecret(k):
			if hasValue && rv != "" {
				pairs[i] = rk + "=" + mask
				changed = true
			}
		case v != "":
			if m := URL(v); m != v {
				pairs[i] = rk + "=" + url.QueryEscape(m)
				changed = true
			}
		}
	}
	return strings.Join(pairs, "&"), changed, true
}

// schemeOnly reduces rawURL to its scheme followed by ":xxxxx", or to
// "xxxxx" when it does not start with one.
func schemeOnly(rawURL string) string {
	i := strings.IndexByte(rawURL, ':')
	if i <= 0 || !isScheme(rawURL[:i]) {
		return mask
	}
	return strings.ToLower(rawURL[:i]) + ":" + mask
}

// isScheme reports whether s is a URL scheme (RFC 3986, section 3.1):
// a letter followed by letters, digits, '+', '-' or '.'.
func isScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

func isSecret(param string) bool {
	p := strings.ToLower(param)
	for _, s := range secretParams {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// keywordSecret reports whether rawURL, read as PostgreSQL keyword/value
// settings (as pgx reads every string not starting with postgres:// or
// postgresql://), has a key naming a secret: in "pass:?=0000" the key is
// "pass:?" and 0000 its value, which the query "=0000" does not mask.
func keywordSecret(rawURL string) bool {
	if strings.HasPrefix(rawURL, "postgres://") || strings.HasPrefix(rawURL, "postgresql://") {
		return false
	}
	for _, field := range keywordFields(rawURL) {
		key, _, ok := strings.Cut(field, "=")
		if !ok {
			continue
		}
		if i := strings.LastIndexAny(key, "?&"); i >= 0 && isSecret(key[i+1:]) {
			continue // a query parameter's name: query masks its value
		}
		k := strings.ToLower(key)
		if strings.Contains(k, "pass") || strings.Contains(k, "secret") || strings.Contains(k, "token") {
			return true
		}
	}
	return false
}

// keywordFields splits rawURL at white space into "key=value" fields as a
// keyword/value parser reads them, which allows white space around the '='
// ("pass:? =0000" is the key "pass:?" with the value 0000).
func keywordFields(rawURL string) []string {
	var fields []string
	for _, f := range strings.Fields(rawURL) {
		if n := len(fields); n > 0 && (strings.HasPrefix(f, "=") || strings.HasSuffix(fields[n-1], "=")) {
			fields[n-1] += f
			continue
		}
		fields = append(fields, f)
	}
	return fields
}
