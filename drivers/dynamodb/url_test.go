package dynamodb

import (
	"errors"
	"net/url"
	"strings"
	"testing"

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
		if ValidateTableName(c.Table) != nil || c.Options.MaxAttempts < 0 {
			t.Errorf("parseURL(%q) accepted %+v", raw, c)
		}
		if u.User != nil {
			t.Errorf("parseURL(%q) accepted credentials", raw)
		}
	})
}
