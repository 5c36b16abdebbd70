package redact

import (
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"password", "postgres://user:s3cret@localhost:5432/db", "postgres://user:xxxxx@localhost:5432/db"},
		{"user only", "postgres://user@localhost/db", "postgres://user@localhost/db"},
		{"secret query", "dynamodb://t?region=x&aws_secret_access_key=s3cret", "dynamodb://t?aws_secret_access_key=xxxxx&region=x"},
		{"password query", "postgres://localhost/db?password=s3cret", "postgres://localhost/db?password=xxxxx"},
		{"URL in query", "dynamodb://t?endpoint=http%3A%2F%2Fu%3As3cret%40localhost%3A8000", "dynamodb://t?endpoint=http%3A%2F%2Fu%3Axxxxx%40localhost%3A8000"},
		{"no secret", "sqlite:events.db", "sqlite:events.db"},
		{"kept as given", "memory://", "memory://"},
		{"unparsable", "postgres://user:s3cret@[::1/db", "postgres:xxxxx"},
		{"keyword/value string", "host=localhost user=u password=s3cret dbname=db", "xxxxx"},
		{"no //", "postgres:user:s3cret@localhost/db", "postgres:xxxxx"},
		{"no scheme, no //", "user:s3cret@localhost/db", "user:xxxxx"},
		{"opaque with query", "sqlite:events.db?_txlock=immediate", "sqlite:events.db?_txlock=immediate"},
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
