package console

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// DefaultPageSize is how many rows a page shows when Config.PageSize is 0.
const DefaultPageSize = 50

// MaxPageSize is the most rows a page shows, whatever ?limit= asks.
const MaxPageSize = 1000

// Config configures the console.
type Config struct {
	// Store is the store the console shows. The console does not close it.
	Store *eventstore.Store
	// StoreURL is the URL the store was opened with; pages show it through
	// eventstore.RedactURL.
	StoreURL string
	// Token, when set, is required on every request but the login form and
	// the static files (Authorization: Bearer, or the login cookie). When
	// empty, only requests to a loopback host name are served.
	Token string
	// Metrics is the reader of the store's MeterProvider, collected on each
	// scrape of /metrics. Nil: /metrics shows only the console's own gauges.
	Metrics sdkmetric.Reader
	// PageSize is how many rows a page shows by default; 0 means
	// DefaultPageSize.
	PageSize int
	// Logger receives failures the console cannot show on a page (a page
	// that failed half-way, a failed scrape). Nil discards.
	Logger *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Console is the console's http.Handler.
type Console struct {
	cfg    Config
	log    *slog.Logger
	tmpl   *template.Template
	mux    *http.ServeMux
	cookie string // the value of the login cookie: derived from the token
}

// New returns the console over cfg.Store. It fails when the store is nil or
// the page size is out of range.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil {
		return nil, errors.New("console: no store")
	}
	if cfg.PageSize < 0 || cfg.PageSize > MaxPageSize {
		return nil, fmt.Errorf("console: page size %d is outside 0..%d", cfg.PageSize, MaxPageSize)
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	c := &Console{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Token != "" {
		c.cookie = cookieValue(cfg.Token)
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	c.tmpl = tmpl
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static files: %w", err)
	}
	c.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /login", c.loginForm)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.logout)
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/streams", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET /streams", c.streams)
	c.mux.HandleFunc("GET /stream", c.stream)
	c.mux.HandleFunc("GET /event", c.event)
	c.mux.HandleFunc("GET /log", c.globalLog)
	c.mux.HandleFunc("GET /tail", c.tail)
	c.mux.HandleFunc("GET /tail/events", c.tailEvents)
	c.mux.HandleFunc("GET /subscriptions", c.subscriptions)
	c.mux.HandleFunc("GET /metrics", c.metrics)
	return c, nil
}

// contentSecurityPolicy allows scripts, styles and connections only from
// the console itself: no inline script, no inline event handler, no
// framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// pageWriteTimeout bounds writing one page (not the live tail): a client
// that stops reading does not hold a read of the store open for ever.
const pageWriteTimeout = 2 * time.Minute

// ServeHTTP serves the console: security headers, the host check, the token
// check, then the page.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if c.cfg.Token == "" && !loopbackHost(r.Host) {
		http.Error(w, "this console answers only to localhost: run evs serve with --token to serve other names", http.StatusMisdirectedRequest)
		return
	}
	if !c.public(r) && !c.authorized(r) {
		if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		h.Set("WWW-Authenticate", `Bearer realm="evs"`)
		http.Error(w, "unauthorized: send Authorization: Bearer TOKEN, or log in at /login", http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/tail/events" {
		// Errors: a ResponseWriter that cannot set deadlines (a test recorder).
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pageWriteTimeout))
	}
	c.mux.ServeHTTP(w, r)
}

// public reports whether r needs no token: the login form and static files.
func (c *Console) public(r *http.Request) bool {
	return c.cfg.Token == "" || r.URL.Path == "/login" || strings.HasPrefix(r.URL.Path, "/static/")
}

// loopbackHost reports whether the Host header names this machine:
// localhost or a loopback address, with or without a port.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// render executes the page template name with data. Before the first byte
// is written an error becomes a 500; after it, the page is cut short and the
// error logged.
func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.tmpl.ExecuteTemplate(w, name, data); err != nil {
		c.log.WarnContext(r.Context(), "console: page failed", "page", r.URL.Path, "err", err)
	}
}

// base is what every page's header needs.
type base struct {
	Title    string
	Nav      string // the navigation entry to highlight
	StoreURL string // redacted
	LoggedIn bool   // a token is set: show the log-out button
}

func (c *Console) base(title, nav string) base {
	return base{Title: title, Nav: nav, StoreURL: eventstore.RedactURL(c.cfg.StoreURL), LoggedIn: c.cfg.Token != ""}
}

// errorPage is the page of a request that failed before any output.
type errorPage struct {
	base
	Status  int
	Message string
}

// fail renders an error page with status code and msg.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	c.render(w, r, "error.html", errorPage{base: c.base(http.StatusText(code), ""), Status: code, Message: msg})
}

// failErr renders the page of err: 400 for invalid input, 501 when the
// driver cannot do it, 500 otherwise. Store errors hold no password.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, eventstore.ErrInvalidArgument): // bad stream ID, cursor, filter…
		code = http.StatusBadRequest
	case errors.Is(err, eventstore.ErrNotSupported):
		code = http.StatusNotImplemented
	}
	c.fail(w, r, code, strings.TrimPrefix(err.Error(), "eventstore: "))
}
