package dynamodb

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awsdynamodb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/driver"
)

// Scheme is the URL scheme this driver registers with [eventstore.Open].
const Scheme = "dynamodb"

func init() { eventstore.Register(Scheme, openURL) }

func openURL(ctx context.Context, u *url.URL, o driver.OpenOptions) (driver.Driver, error) {
	d, err := openParsed(ctx, u, Options{Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// The query parameters of a dynamodb:// URL.
const (
	paramRegion      = "region"
	paramEndpoint    = "endpoint"
	paramCreateTable = "create_table"
	paramMaxAttempts = "max_attempts"
	// The parameters every driver takes.
	paramMustExist      = eventstore.MustExistParam
	paramConnectTimeout = "connect_timeout"
	paramLog            = "log"
	paramOrderer        = "orderer"
	paramPosition       = "position"
)

var knownParams = []string{paramConnectTimeout, paramCreateTable, paramEndpoint, paramLog, paramMaxAttempts, paramMustExist, paramOrderer, paramPosition, paramRegion}

// urlConfig is what a dynamodb:// URL says. It holds no credentials: they
// come from the default AWS chain.
type urlConfig struct {
	Table    string
	Region   string // empty: from the AWS configuration (AWS_REGION, profile)
	Endpoint string // empty: the service's endpoint for the region
	Options  Options
}

// parseURL reads "dynamodb://TABLE?region=…&endpoint=…&create_table=true&max_attempts=N&must_exist=true&connect_timeout=S&log=head|indexed&orderer=on|off&position=wait|async".
// Unknown or repeated parameters, a query that does not parse (a ';' or a
// bad %-escape), and credentials in the URL are rejected with errors
// matching eventstore.ErrInvalidArgument; the errors quote parameter names,
// never values.
func parseURL(u *url.URL) (urlConfig, error) {
	bad := func(format string, args ...any) (urlConfig, error) {
		return urlConfig{}, fmt.Errorf("%w: %s", eventstore.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if !strings.EqualFold(u.Scheme, Scheme) {
		return bad("scheme %q: want %s://TABLE", u.Scheme, Scheme)
	}
	if u.User != nil {
		return bad("credentials do not belong in the URL: they come from the default AWS chain (environment, shared files, IAM role)")
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		return bad("want %s://TABLE?parameters, with the table name as the host", Scheme)
	}
	c := urlConfig{Table: u.Host}
	if err := ValidateTableName(c.Table); err != nil {
		return urlConfig{}, err
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("malformed query")
	}
	for k, vs := range q {
		if !slices.Contains(knownParams, k) {
			return bad("unknown parameter %q (known: %s)", k, strings.Join(knownParams, ", "))
		}
		if len(vs) != 1 {
			return bad("parameter %q given %d times", k, len(vs))
		}
	}
	c.Region = q.Get(paramRegion)
	if q.Has(paramRegion) && c.Region == "" {
		return bad("empty %s", paramRegion)
	}
	if q.Has(paramEndpoint) {
		c.Endpoint = q.Get(paramEndpoint)
		e, err := url.Parse(c.Endpoint)
		if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" || e.User != nil {
			return bad("%s: want an http:// or https:// URL without credentials", paramEndpoint)
		}
	}
	if q.Has(paramCreateTable) {
		if c.Options.CreateTable, err = strconv.ParseBool(q.Get(paramCreateTable)); err != nil {
			return bad("%s: want true or false", paramCreateTable)
		}
	}
	if q.Has(paramMustExist) {
		if c.Options.MustExist, err = strconv.ParseBool(q.Get(paramMustExist)); err != nil {
			return bad("%s: want true or false", paramMustExist)
		}
	}
	if q.Has(paramConnectTimeout) {
		n, err := strconv.Atoi(q.Get(paramConnectTimeout))
		if err != nil || n <= 0 || int64(n) > math.MaxInt64/int64(time.Second) {
			return bad("%s: want a positive whole number of seconds", paramConnectTimeout)
		}
		c.Options.ConnectTimeout = time.Duration(n) * time.Second
	}
	if q.Has(paramLog) {
		c.Options.Log = LogLayout(q.Get(paramLog))
		if c.Options.Log != LogHead && c.Options.Log != LogIndexed {
			return bad("%s: want %s or %s", paramLog, LogHead, LogIndexed)
		}
	}
	if q.Has(paramOrderer) {
		switch q.Get(paramOrderer) {
		case "on":
		case "off":
			c.Options.NoOrderer = true
		default:
			return bad("%s: want on or off", paramOrderer)
		}
	}
	if q.Has(paramPosition) {
		switch q.Get(paramPosition) {
		case "wait":
		case "async":
			c.Options.AsyncPositions = true
		default:
			return bad("%s: want wait or async", paramPosition)
		}
	}
	if q.Has(paramMaxAttempts) {
		n, err := strconv.Atoi(q.Get(paramMaxAttempts))
		if err != nil || n < 1 {
			return bad("%s: want a positive number", paramMaxAttempts)
		}
		c.Options.MaxAttempts = n
	}
	return c, nil
}

// Open opens the table named by a dynamodb:// URL (see the package
// documentation) with a client of its own, configured from the default AWS
// configuration (credentials from the environment, shared files or an IAM
// role; region from the URL or the configuration). opts adds to what the URL
// sets: CreateTable and MustExist apply if either sets them, and the URL's
// max_attempts and connect_timeout take precedence. The client's HTTP
// connections time out after [Options.ConnectTimeout] (dial, TLS handshake,
// waiting for a response to begin). Close releases the client's connections.
// Errors never contain credentials.
func Open(ctx context.Context, rawURL string, opts Options) (*Driver, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: open: %w: malformed URL", eventstore.ErrInvalidArgument)
	}
	return openParsed(ctx, u, opts)
}

func openParsed(ctx context.Context, u *url.URL, opts Options) (*Driver, error) {
	c, err := parseURL(u)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: open: %w", err)
	}
	c.Options.CreateTable = c.Options.CreateTable || opts.CreateTable
	c.Options.MustExist = c.Options.MustExist || opts.MustExist
	if c.Options.MaxAttempts == 0 {
		c.Options.MaxAttempts = opts.MaxAttempts
	}
	if c.Options.ConnectTimeout == 0 {
		c.Options.ConnectTimeout = opts.ConnectTimeout
	}
	switch {
	case c.Options.Log == "":
		c.Options.Log = opts.Log
	case opts.Log != "" && opts.Log != c.Options.Log:
		return nil, fmt.Errorf("dynamodb: open: %w: the URL asks for the %q log layout, Options.Log for %q", eventstore.ErrInvalidArgument, c.Options.Log, opts.Log)
	}
	c.Options.NoOrderer = c.Options.NoOrderer || opts.NoOrderer
	c.Options.AsyncPositions = c.Options.AsyncPositions || opts.AsyncPositions
	c.Options.OrdererLease, c.Options.OrderTimeout, c.Options.OrderPoll = opts.OrdererLease, opts.OrderTimeout, opts.OrderPoll
	c.Options.Logger = opts.Logger
	c.Options.logBucketSize = opts.logBucketSize
	if err := c.Options.validate(); err != nil {
		return nil, err
	}

	// The SDK's buildable client (the configuration may add a CA bundle
	// to it), with room for the connections of concurrent appends and
	// reads, frozen into a plain *http.Client so that Close can release its
	// connections. Without the timeouts, an endpoint that accepts
	// connections and never answers holds a request until its context
	// ends (the SDK's defaults: 30 s to dial, none for the response).
	timeout := c.Options.ConnectTimeout
	hc := awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = timeout }).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = 64
			tr.TLSHandshakeTimeout = timeout
			tr.ResponseHeaderTimeout = timeout
		})
	loadOpts := []func(*config.LoadOptions) error{config.WithHTTPClient(hc)}
	if c.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(c.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: open: load the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("dynamodb: open: %w: no region: set the %s parameter or AWS_REGION", eventstore.ErrInvalidArgument, paramRegion)
	}
	frozen := cfg.HTTPClient
	if b, ok := frozen.(*awshttp.BuildableClient); ok {
		frozen = b.Freeze()
	}
	closeIdle := func() {
		if c, ok := frozen.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
	client := awsdynamodb.NewFromConfig(cfg, func(o *awsdynamodb.Options) {
		o.HTTPClient = frozen
		o.Logger = logging.Nop{} // library code never prints; the SDK's default logger does
		if c.Endpoint != "" {
			o.BaseEndpoint = &c.Endpoint
		}
	})
	d, err := newDriver(ctx, client, c.Table, c.Options, closeIdle)
	if err != nil {
		closeIdle()
		return nil, err
	}
	return d, nil
}
