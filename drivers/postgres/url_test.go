package postgres_test

import (
	"strings"
	"testing"

	"github.com/eventkit/eventstore/drivers/postgres"
)

// FuzzParseURL: whatever follows the host, parsing a URL never fails with an
// error that shows the password, and a schema it accepts is a valid one.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"/db?schema=orders",
		"/db?schema=Orders",
		"/db?sslmode=disable&connect_timeout=5",
		"/db?eventstore_x=1",
		"/db?schema=a&schema=b",
		":5432/db?sslmode=bogus",
		":notaport/db",
		"/db?pool_max_conns=x",
		"/db?%zz",
		"/db?password=zzz",
		"]/db",
	} {
		f.Add(s)
	}
	const password = "Pw-0f8fad5b"
	f.Fuzz(func(t *testing.T, tail string) {
		if strings.Contains(tail, password) {
			return
		}
		schema, err := postgres.ParseConfig("postgres://app:" + password + "@localhost" + tail)
		if err != nil {
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error shows the password: %v", err)
			}
			return
		}
		if schema != "" {
			if err := postgres.ValidateSchema(schema); err != nil {
				t.Fatalf("accepted schema %q: %v", schema, err)
			}
		}
	})
}
