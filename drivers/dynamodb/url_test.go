package dynamodb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
)

func TestParseURL(t *testing.T) {
	u, err := url.Parse("dynamodb://Orders.v1?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A8000&create_table=true&max_attempts=4")
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	want := urlConfig{Table: "Orders.v1", Region: "eu-west-1", Endpoint: "http://127.0.0.1:8000", Options: Options{CreateTable: true, MaxAttempts: 4}}
	if c.Table != want.Table || c.Region != want.Region || c.Endpoint != want.Endpoint ||
		c.Options.CreateTable != want.Options.CreateTable || c.Options.MaxAttempts != want.Options.MaxAttempts {
		t.Errorf("parseURL = %+v, want %+v", c, want)
	}
}

func TestParseURLMustExistAndTimeout(t *testing.T) {
	for raw, want := range map[string]Options{
		"dynamodb://events?must_exist=true&connect_timeout=3": {MustExist: true, ConnectTimeout: 3 * time.Second},
		"dynamodb://events?must_exist=false":                  {},
		"dynamodb://events?must_exist=1&create_table=true":    {MustExist: true, CreateTable: true},
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseURL(u)
		if err != nil {
			t.Errorf("parseURL(%q): %v", raw, err)
			continue
		}
		if c.Options.MustExist != want.MustExist || c.Options.ConnectTimeout != want.ConnectTimeout || c.Options.CreateTable != want.CreateTable {
			t.Errorf("parseURL(%q) = %+v, want %+v", raw, c.Options, want)
		}
	}
}

func TestParseURLLog(t *testing.T) {
	for _, tc := range []struct {
		raw       string
		log       LogLayout
		noOrderer bool
		async     bool
	}{
		{"dynamodb://events", "", false, false},
		{"dynamodb://events?log=head", LogHead, false, false},
		{"dynamodb://events?log=indexed", LogIndexed, false, false},
		{"dynamodb://events?log=indexed&orderer=off", LogIndexed, true, false},
		{"dynamodb://events?orderer=on", "", false, false},
		{"dynamodb://events?log=indexed&position=async", LogIndexed, false, true},
		{"dynamodb://events?position=wait", "", false, false},
	} {
		u, err := url.Parse(tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseURL(u)
		if err != nil || c.Options.Log != tc.log || c.Options.NoOrderer != tc.noOrderer || c.Options.AsyncPositions != tc.async {
			t.Errorf("parseURL(%q) = Log %q, NoOrderer %v, AsyncPositions %v, %v; want %q, %v, %v",
				tc.raw, c.Options.Log, c.Options.NoOrderer, c.Options.AsyncPositions, err, tc.log, tc.noOrderer, tc.async)
		}
	}
}

// TestParseURLRejects: hostile and mistaken queries are rejected whole,
// never read in part (a lenient parser drops a pair with ';' or a bad
// %-escape).
func TestParseURLRejects(t *testing.T) {
	for _, raw := range []string{
		"dynamodb://events?region=us-east-1;create_table=true",
		"dynamodb://events?create_table=true&must_exist=true;",
		"dynamodb://events?must_exist=true;region=us-east-1",
		"dynamodb://events?region=%zz",
		"dynamodb://events?must_exist=%",
		"dynamodb://events?must_exist=yes",
		"dynamodb://events?must_exist=",
		"dynamodb://events?must_exist=true&must_exist=false",
		"dynamodb://events?MUST_EXIST=true",
		"dynamodb://events?connect_timeout=0",
		"dynamodb://events?connect_timeout=-1",
		"dynamodb://events?connect_timeout=2.5",
		"dynamodb://events?connect_timeout=10s",
		"dynamodb://events?connect_timeout=99999999999999999",
		"dynamodb://events?connect_timeout=1&connect_timeout=1",
		"dynamodb://events?log=sharded",
		"dynamodb://events?log=",
		"dynamodb://events?log=Indexed",
		"dynamodb://events?log=head&log=indexed",
		"dynamodb://events?orderer=false",
		"dynamodb://events?orderer=",
		"dynamodb://events?position=",
		"dynamodb://events?position=Async",
		"dynamodb://events?position=true",
		"dynamodb://events?position=async&position=wait",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := parseURL(u); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("parseURL(%q) = %+v, %v; want an error matching ErrInvalidArgument", raw, c, err)
		}
	}
}

// FuzzParseURL: parsing never panics, accepts only what it documents, and
// its errors never repeat a parameter value or a password (marked S3CR3T in
// the seeds; the fuzzer keeps the marker in many of its mutations).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"dynamodb://events?region=us-east-1",
		"dynamodb://events?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A8000&create_table=true&max_attempts=3",
		"dynamodb://events?aws_secret_access_key=S3CR3T",
		"dynamodb://AKIA:S3CR3T@events?region=us-east-1",
		"dynamodb://events?endpoint=http%3A%2F%2Fu%3AS3CR3T%40h",
		"dynamodb://events?create_table=S3CR3T",
		"dynamodb://events?max_attempts=S3CR3T",
		"dynamodb://events?must_exist=S3CR3T&connect_timeout=S3CR3T",
		"dynamodb://events?region=us-east-1;token=S3CR3T",
		"dynamodb://events?must_exist=true&connect_timeout=5",
		"dynamodb://events?region=a&region=S3CR3T",
		"dynamodb://events?region=S3CR3T&token=S3CR3T",
		"dynamodb:///events",
		"DYNAMODB://ev%20ents",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		c, err := parseURL(u)
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("parseURL(%q): error %v does not match ErrInvalidArgument", raw, err)
			}
			secret := strings.Contains(u.RawQuery, "S3CR3T") || (u.User != nil && strings.Contains(u.User.String(), "S3CR3T"))
			inName := strings.Contains(u.Host, "S3CR3T") // the table and parameter names are quoted
			for k := range u.Query() {
				inName = inName || strings.Contains(k, "S3CR3T")
			}
			if secret && strings.Contains(err.Error(), "S3CR3T") && !inName {
				t.Errorf("parseURL(%q): error %q repeats a secret", raw, err)
			}
			return
		}
		if _, err := url.ParseQuery(u.RawQuery); err != nil {
			t.Errorf("parseURL(%q) accepted a query that does not parse", raw)
		}
		if ValidateTableName(c.Table) != nil || c.Options.MaxAttempts < 0 || c.Options.ConnectTimeout < 0 {
			t.Errorf("parseURL(%q) accepted %+v", raw, c)
		}
		if u.User != nil {
			t.Errorf("parseURL(%q) accepted credentials", raw)
		}
	})
}
