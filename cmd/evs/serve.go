package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/console"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// tokenEnv names the environment variable that holds the console's token
// when --token is not given.
const tokenEnv = "EVS_TOKEN"

// minTokenLength is the shortest token evs serve accepts: guessing one
// must be out of reach.
const minTokenLength = 16

// defaultServeAddr is where evs serve listens without --addr: this machine
// only.
const defaultServeAddr = "127.0.0.1:8080"

// Timeouts of the console's server. Pages have their own write deadline
// (internal/console); the live tail has none.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

// setupServe: evs serve [--addr HOST:PORT] [--allow-remote] [--token TOKEN].
func setupServe(fs *flag.FlagSet) runFunc {
	var (
		addr, token string
		allowRemote bool
		pageSize    int
	)
	fs.StringVar(&addr, "addr", defaultServeAddr, "listen on `HOST:PORT`; a host other than localhost or a loopback address needs --allow-remote and a token")
	fs.BoolVar(&allowRemote, "allow-remote", false, "allow --addr to be reachable from other machines (needs a token)")
	// No default shown: the usage text must never print a token.
	fs.StringVar(&token, "token", "", "require `TOKEN` (at least 16 characters) as a bearer token or through the login form (default $"+tokenEnv+"; prefer the variable: a flag shows in ps)")
	fs.IntVar(&pageSize, "page-size", console.DefaultPageSize, fmt.Sprintf("rows per page, 1 to %d", console.MaxPageSize))
	return func(ctx context.Context, e *env, cf commonFlags, args []string) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if token == "" {
			token = os.Getenv(tokenEnv)
		}
		if token != "" && len(token) < minTokenLength {
			return usagef("the token is %d characters long: want at least %d (e.g. openssl rand -hex 16)", len(token), minTokenLength)
		}
		if pageSize < 1 || pageSize > console.MaxPageSize {
			return usagef("invalid --page-size %d: want 1 to %d", pageSize, console.MaxPageSize)
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return usagef("invalid --addr %q: want HOST:PORT, such as %s", addr, defaultServeAddr)
		}
		if !loopback(host) {
			switch {
			case !allowRemote:
				return usagef("--addr %s is reachable from other machines: add --allow-remote and a token (--token or $%s), or listen on 127.0.0.1", addr, tokenEnv)
			case token == "":
				return usagef("--allow-remote needs a token: set $%s (or --token) to at least %d random characters", tokenEnv, minTokenLength)
			}
		}
		return serve(ctx, e, cf, addr, console.Config{StoreURL: cf.url, Token: token, PageSize: pageSize})
	}
}

// loopback reports whether host names this machine only.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serve opens the store with an OpenTelemetry MeterProvider whose reader
// /metrics collects, and serves the console on addr until ctx is done.
func serve(ctx context.Context, e *env, cf commonFlags, addr string, cfg console.Config) (err error) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		if serr := mp.Shutdown(sctx); serr != nil && err == nil {
			err = fmt.Errorf("metrics: %w", serr)
		}
	}()
	opts := e.storeOptions()
	opts.MeterProvider = mp
	s, err := eventstore.OpenWith(ctx, existingURL(cf.url), opts) // its errors hold no password
	if err != nil {
		return err
	}
	defer func() {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	cfg.Store, cfg.Metrics, cfg.Logger = s, reader, opts.Logger
	h, err := console.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	// Requests live in baseCtx: cancelling it ends the live tails, which
	// would otherwise keep Shutdown waiting.
	baseCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	consoleURL := "http://" + ln.Addr().String() + "/"
	if cf.json {
		if err := newJSONEncoder(e.stdout).Encode(struct {
			URL   string `json:"url"`
			Store string `json:"store"`
		}{consoleURL, displayURL(cf.url)}); err != nil {
			srv.Close()
			return err
		}
	}
	fmt.Fprintf(e.stderr, "evs serve: console of %s at %s (Ctrl-C to stop)\n", displayURL(cf.url), consoleURL)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	cancelRequests()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return &interruptedError{}
}
