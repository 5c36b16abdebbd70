package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"password", "postgres://user:s3cret@localhost:5432/db", "postgres://user:xxxxx@localhost:5432/db"},
		{"user only", "postgres://user@localhost/db", "postgres://user@localhost/db"},
		{"secret query", "dynamodb://t?region=x&aws_secret_access_key=s3cret", "dynamodb://t?region=x&aws_secret_access_key=xxxxx"},
		{"password query", "postgres://localhost/db?password=s3cret", "postgres://localhost/db?password=xxxxx"},
		{"URL in query", "dynamodb://t?endpoint=http%3A%2F%2Fu%3As3cret%40localhost%3A8000", "dynamodb://t?endpoint=http%3A%2F%2Fu%3Axxxxx%40localhost%3A8000"},
		{"no secret", "sqlite:events.db", "sqlite:events.db"},
		{"kept as given", "memory://", "memory://"},
		{"order and spelling kept", "postgres://h/db?b=2&A=1&Password=s3cret&c=%7E", "postgres://h/db?b=2&A=1&Password=xxxxx&c=%7E"},
		{"unparsable", "postgres://user:s3cret@[::1/db", "postgres:xxxxx"},
		{"keyword/value string", "host=localhost user=u password=s3cret dbname=db", "xxxxx"},
		{"no //", "postgres:user:s3cret@localhost/db", "postgres:xxxxx"},
		{"no scheme, no //", "user:s3cret@localhost/db", "user:xxxxx"},
		{"'=' in a path", "postgres:/x password=s3cret", "postgres:xxxxx"},
		{"'=' in a host", "//token=s3cret", "xxxxx"},
		{"opaque with query", "sqlite:events.db?_txlock=immediate", "sqlite:events.db?_txlock=immediate"},
		{"keyword with white space before '='", "pass:?x =s3cret", "pass:xxxxx"},
		{"keyword with white space after '='", "pass:?x= s3cret", "pass:xxxxx"},

		// The lenient url.URL.Query drops a pair with ';' or a bad escape,
		// so an earlier version found no secret and printed these as given.
		{"';' before a secret", "postgres://h/db?schema=orders;password=s3cret", "postgres:xxxxx"},
		{"';' in a secret", "postgres://h/db?password=s3c;ret", "postgres:xxxxx"},
		{"bad escape in a secret", "postgres://h/db?password=s3cret%zz", "postgres:xxxxx"},
		{"bad escape elsewhere", "kurrentdb://h:2113?namespace=a%zz&token=s3cret", "kurrentdb:xxxxx"},
		// An unescaped '#', '/' or '?' in a password: the parser cuts the
		// authority there, reads the start as a port and the rest as a
		// fragment, path or query.
		{"'#' in a password", "postgres://u:12#s3cret@localhost/db", "postgres:xxxxx"},
		{"'/' in a password", "postgres://u:12/s3cret@localhost/db", "postgres:xxxxx"},
		{"'?' in a password", "postgres://u:12?s3cret@localhost/db", "postgres:xxxxx"},
		{"'?' and a query in a password", "postgres://u:12?password=x@s3cret@localhost/db", "postgres:xxxxx"},
		{"'@' in a password", "postgres://u:s3@cret@localhost/db", "postgres://u:xxxxx@localhost/db"},
		{"space in a password", "postgres://u:s3 cret@localhost/db", "postgres:xxxxx"},
		{"non-UTF-8 in a password", "postgres://u:s3cret\xff@localhost/db", "postgres:xxxxx"},
		{"control character in a password", "postgres://u:s3cret\n@localhost/db", "postgres:xxxxx"},
		{"'#' in a query secret", "postgres://h/db?password=s3#cret", "postgres:xxxxx"},
		{"'@' in a path", "postgres:/u:s3cret@localhost/db", "postgres:xxxxx"},
		// A secret key is matched case-insensitively, once unescaped.
		{"upper-case key", "postgres://h/db?PASSWORD=s3cret", "postgres://h/db?PASSWORD=xxxxx"},
		{"escaped key", "postgres://h/db?pass%77ord=s3cret", "postgres://h/db?pass%77ord=xxxxx"},
		{"sslpassword", "postgres://h/db?sslpassword=s3cret", "postgres://h/db?sslpassword=xxxxx"},
		{"sslkey", "postgres://h/db?sslkey=s3cret", "postgres://h/db?sslkey=xxxxx"},
		{"aws session token", "dynamodb://t?aws_session_token=s3cret", "dynamodb://t?aws_session_token=xxxxx"},
		{"auth", "kurrentdb://h?Authorization=s3cret", "kurrentdb://h?Authorization=xxxxx"},
		// Another parameter's value is redacted like a URL.
		{"lenient URL in query", "dynamodb://t?endpoint=http%3A%2F%2Fu%3A12%23s3cret%40localhost", "dynamodb://t?endpoint=http%3Axxxxx"},
		{"keyword/value in query", "postgres://h/db?options=password%3Ds3cret", "postgres://h/db?options=xxxxx"},
		// A keyword/value string whose secret holds a ':' has no scheme.
		{"':' in a keyword/value secret", "password=s3cret:x host=h", "xxxxx"},
		{"quoted keyword/value secret", "host=h password='s3 cret#'", "xxxxx"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := URL(tc.in)
			if got != tc.want {
				t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("URL(%q) = %q still holds the secret", tc.in, got)
			}
		})
	}
}

func TestString(t *testing.T) {
	// Drivers pass a URL they parsed; its raw query is as lenient as the
	// string it came from.
	for _, raw := range []string{
		"postgres://h/db?schema=orders;password=s3cret",
		"postgres://u:12#s3cret@localhost/db",
		"postgres://u:s3cret@localhost/db",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("url.Parse(%q): %v", raw, err)
		}
		before := *u
		if got := String(u); strings.Contains(got, "s3cret") {
			t.Errorf("String(%q) = %q still holds the secret", raw, got)
		}
		if *u != before {
			t.Errorf("String(%q) modified its argument", raw)
		}
	}
}
