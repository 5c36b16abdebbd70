// Package redact masks secrets in URLs before they reach an error or a log.
package redact

import (
	"net/url"
	"strings"
)

const mask = "xxxxx"

// secretParams are query parameters whose values are masked (lower case).
var secretParams = []string{"password", "passwd", "pwd", "secret", "token", "key", "credential", "signature"}

// URL returns rawURL with the userinfo password and the values of secret-looking
// query parameters replaced by "xxxxx". An unparsable URL is reduced to its
// scheme, so a secret in it cannot leak.
func URL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || unreadable(u) {
		if i := strings.Index(rawURL, ":"); i > 0 && i < 20 {
			return rawURL[:i] + ":" + mask
		}
		return mask
	}
	if !hasSecret(u) {
		return rawURL // as given: re-encoding would change it (memory:// → memory:)
	}
	return String(u)
}

// unreadable reports whether u may hold a secret where a URL has none: a
// keyword/value connection string ("host=h password=pw") parses as a path,
// and "user:pw@host" without "//" as an opaque part.
func unreadable(u *url.URL) bool {
	return strings.ContainsAny(u.Opaque, "@=") || u.Scheme == "" && strings.ContainsAny(u.Path, "@=")
}

// hasSecret reports whether String would mask anything in u.
func hasSecret(u *url.URL) bool {
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return true
		}
	}
	for k, vs := range u.Query() {
		if isSecret(k) {
			return true
		}
		for _, v := range vs {
			if _, ok := maskInner(v); ok {
				return true
			}
		}
	}
	return false
}

// maskInner masks the password of a URL given as a parameter value (an
// endpoint, say); ok is false when v holds none.
func maskInner(v string) (string, bool) {
	inner, err := url.Parse(v)
	if err != nil || inner.User == nil {
		return v, false
	}
	if _, has := inner.User.Password(); !has {
		return v, false
	}
	inner.User = url.UserPassword(inner.User.Username(), mask)
	return inner.String(), true
}

// String is URL for a parsed URL; u is not modified.
func String(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, has := c.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), mask)
		}
	}
	if c.RawQuery != "" {
		q := c.Query()
		changed := false
		for k, vs := range q {
			if isSecret(k) {
				q[k] = []string{mask}
				changed = true
				continue
			}
			for i, v := range vs {
				if m, ok := maskInner(v); ok {
					vs[i] = m
					changed = true
				}
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.String()
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
