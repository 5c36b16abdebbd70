package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/drivers/memory"
	_ "github.com/eventkit/eventstore/drivers/sqlite"
	"github.com/eventkit/eventstore/internal/console"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// backends are the stores the handler tests run against.
var backends = []struct {
	name string
	open func(t testing.TB) (*eventstore.Store, string)
}{
	{"memory", func(t testing.TB) (*eventstore.Store, string) {
		return eventstore.New(memory.New(), eventstore.Options{}), "memory://"
	}},
	{"sqlite", func(t testing.TB) (*eventstore.Store, string) {
		u := "sqlite://" + t.TempDir() + "/events.db"
		s, err := eventstore.Open(t.Context(), u)
		require.NoError(t, err)
		return s, u
	}},
}

// newStore opens a store of backend b for one test and closes it at the end.
func newStore(t testing.TB, open func(testing.TB) (*eventstore.Store, string)) (*eventstore.Store, string) {
	t.Helper()
	s, u := open(t)
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	return s, u
}

// serve starts the console over cfg on a test server.
func serve(t testing.TB, cfg console.Config) *httptest.Server {
	t.Helper()
	c, err := console.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path from srv and returns the status and body.
func get(t testing.TB, srv *httptest.Server, path string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

// mustGet fetches path and requires 200.
func mustGet(t testing.TB, srv *httptest.Server, path string) string {
	t.Helper()
	code, body, _ := get(t, srv, path)
	require.Equal(t, http.StatusOK, code, "GET %s: %s", path, body)
	return body
}

// xssStream is a stream ID, event type and data that would run script if a
// page did not escape them.
const (
	xssStream = `Xss-<img src=x onerror="window.pwned=1">`
	xssType   = `<script>window.pwned=1</script>`
	xssData   = `{"html":"<script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\">"}`
)

// fill appends the test's events: Order-1 with 5 events, Order-2 with 1,
// Payment-1 with a binary event, and the XSS stream.
func fill(t testing.TB, s *eventstore.Store) {
	t.Helper()
	ctx := t.Context()
	for i := 1; i <= 5; i++ {
		ev := eventstore.NewEvent("OrderPlaced", fmt.Appendf(nil, `{"n":%d,"items":["a","b"]}`, i))
		if i == 5 {
			ev.Type = "OrderShipped"
			ev.Metadata = []byte(`{"correlation_id":"c-42"}`)
		}
		_, err := s.Append(ctx, "Order-1", eventstore.Any, ev)
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, "Order-2", eventstore.NoStream, eventstore.NewEvent("OrderPlaced", []byte(`{}`)))
	require.NoError(t, err)
	_, err = s.Append(ctx, "Payment-1", eventstore.NoStream, eventstore.Event{Type: "PaymentBlob", ContentType: eventstore.Binary, Data: []byte{0, 1, 2, 0xfe, 0xff}})
	require.NoError(t, err)
	_, err = s.Append(ctx, xssStream, eventstore.NoStream, eventstore.NewEvent(xssType, []byte(xssData)))
	require.NoError(t, err)
}

var (
	versionLink = regexp.MustCompile(`version=(\d+)">`)
	streamLinkR = regexp.MustCompile(`<a href="/stream\?id=([^"&]+)">`)
	hrefByID    = regexp.MustCompile(`<a href="([^"]+)" id="([a-z]+)">`)
)

// versions lists the versions an events table links to, in page order.
func versions(body string) []int {
	var out []int
	for _, m := range versionLink.FindAllStringSubmatch(body, -1) {
		n, _ := strconv.Atoi(m[1])
		out = append(out, n)
	}
	return out
}

// links maps the id of each pager link to its URL.
func links(body string) map[string]string {
	out := map[string]string{}
	for _, m := range hrefByID.FindAllStringSubmatch(body, -1) {
		out[m[2]] = html.UnescapeString(m[1])
	}
	return out
}

func TestPages(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, u := newStore(t, b.open)
			fill(t, s)
			srv := serve(t, console.Config{Store: s, StoreURL: u, PageSize: 2})
			_, listErr := s.ListStreams(t.Context(), eventstore.ListStreamsOptions{})
			canList := !errors.Is(listErr, eventstore.ErrNotSupported)

			t.Run("streams", func(t *testing.T) {
				body := mustGet(t, srv, "/streams")
				assert.Contains(t, body, `id="open-stream"`, "the open-by-ID form is always there")
				if !canList {
					assert.Contains(t, body, `id="not-supported"`)
					return
				}
				// Page through the category Order, one stream a page.
				var got []string
				next := "/streams?category=Order&limit=1"
				for next != "" {
					body := mustGet(t, srv, next)
					for _, m := range streamLinkR.FindAllStringSubmatch(body, -1) {
						id, err := url.QueryUnescape(html.UnescapeString(m[1]))
						require.NoError(t, err)
						got = append(got, id)
					}
					next = links(body)["next"]
				}
				assert.Equal(t, []string{"Order-1", "Order-2"}, got)
			})

			pages := []struct {
				name, path string
				want       []int
				next       map[string]string // link id → the versions of the page it leads to
			}{
				{"newest first", "/stream?id=Order-1", []int{5, 4}, map[string]string{"older": "3,2", "oldest": "2,1"}},
				{"older page", "/stream?id=Order-1&from=3&order=newest", []int{3, 2}, map[string]string{"older": "1", "newer": "5,4", "latest": "5,4"}},
				{"oldest first", "/stream?id=Order-1&order=oldest", []int{1, 2}, map[string]string{"newer": "3,4", "latest": "4,5"}},
				{"last oldest-first page", "/stream?id=Order-1&order=oldest&from=5", []int{5}, map[string]string{"older": "3,4", "oldest": "1,2"}},
				{"limit", "/stream?id=Order-1&limit=3", []int{5, 4, 3}, map[string]string{"older": "2,1"}},
			}
			for _, p := range pages {
				t.Run("stream/"+p.name, func(t *testing.T) {
					body := mustGet(t, srv, p.path)
					assert.Equal(t, p.want, versions(body))
					ls := links(body)
					for id, want := range p.next {
						require.Contains(t, ls, id, "page %s links %s", p.path, id)
						assert.Equal(t, want, strings.Trim(strings.Join(strings.Fields(fmt.Sprint(versions(mustGet(t, srv, ls[id])))), ","), "[]"),
							"%s → %s (%s)", p.path, id, ls[id])
					}
				})
			}

			t.Run("event", func(t *testing.T) {
				body := mustGet(t, srv, "/event?stream=Order-1&version=5")
				assert.Contains(t, body, "<pre id=\"data\">{\n  &#34;n&#34;: 5,\n  &#34;items&#34;: [\n    &#34;a&#34;,", "JSON pretty-printed")
				assert.Contains(t, body, "<pre id=\"metadata\">{\n  &#34;correlation_id&#34;: &#34;c-42&#34;\n}</pre>")
				assert.Contains(t, body, `<dd id="type">OrderShipped</dd>`)
				assert.Contains(t, body, `<dd id="content-type">json</dd>`)
				assert.Regexp(t, `<dd id="recorded">\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z</dd>`, body)
				assert.Regexp(t, `<dd id="position">\d+/\d+</dd>`, body)
				var ev eventstore.RecordedEvent
				for e, err := range s.ReadStream(t.Context(), "Order-1", eventstore.ReadStreamOptions{From: 5}) {
					require.NoError(t, err)
					ev = e
				}
				assert.Contains(t, body, `<dd id="event-id">`+ev.ID.String()+`</dd>`)
				assert.Contains(t, body, `<dd id="position">`+ev.Position.String()+`</dd>`)

				body = mustGet(t, srv, "/event?stream=Payment-1&version=1")
				assert.Contains(t, body, `<dd id="content-type">binary</dd>`)
				assert.Contains(t, body, `5 bytes, as hex`)
				assert.Contains(t, body, `00000000  00 01 02 fe ff`, "binary as a hex dump")
			})

			t.Run("log", func(t *testing.T) {
				var got []string
				next := "/log?category=Order&type=OrderPlaced"
				for n := 0; next != ""; n++ {
					require.Less(t, n, 10, "the log pages never end")
					body := mustGet(t, srv, next)
					for _, m := range regexp.MustCompile(`<td>(Order\w+)</td>`).FindAllStringSubmatch(body, -1) {
						got = append(got, m[1])
					}
					assert.NotContains(t, body, "Payment-1", "category filter")
					next = links(body)["next"]
				}
				assert.Equal(t, []string{"OrderPlaced", "OrderPlaced", "OrderPlaced", "OrderPlaced", "OrderPlaced"}, got,
					"4 of Order-1 and 1 of Order-2, 2 a page, and the shipped one filtered out")

				body := mustGet(t, srv, "/log?order=newest&limit=1")
				assert.Contains(t, body, "window.pwned", "newest first starts with the last event")
				assert.Contains(t, links(body), "next")
			})

			t.Run("escaping", func(t *testing.T) {
				for _, path := range []string{
					"/streams?prefix=Xss", "/log?order=newest", "/stream?id=" + url.QueryEscape(xssStream),
					"/event?stream=" + url.QueryEscape(xssStream) + "&version=1",
				} {
					body := mustGet(t, srv, path)
					assert.NotContains(t, body, "<script>window", path)
					assert.NotContains(t, body, "<img src=x", path)
					if path != "/streams?prefix=Xss" {
						assert.Contains(t, body, "&lt;script&gt;window.pwned=1&lt;/script&gt;", path)
					} else if canList {
						assert.Contains(t, body, "Xss-&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;</a>", path)
					}
				}
			})

			t.Run("errors", func(t *testing.T) {
				for _, tc := range []struct{ path, want string }{
					{"/stream?id=Nope-1", "has no events"},
					{"/stream?id=", "empty"},
					{"/stream?id=Order-1&from=x", "want a version"},
					{"/stream?id=Order-1&limit=0", "want 1 to"},
					{"/event?stream=Order-1&version=9", "no event at version 9"},
					{"/event?stream=Order-1&version=0", "want a version"},
					{"/log?cursor=nope", "want a position"},
					{"/log?type=$x", "type filter"},
					{"/nothing", "404"},
				} {
					code, body, _ := get(t, srv, tc.path)
					assert.GreaterOrEqual(t, code, 400, tc.path)
					assert.Less(t, code, 500, tc.path)
					assert.Contains(t, body, tc.want, tc.path)
				}
			})

			t.Run("headers", func(t *testing.T) {
				for _, path := range []string{"/streams", "/log", "/tail", "/subscriptions", "/event?stream=Order-1&version=1", "/nothing"} {
					_, _, h := get(t, srv, path)
					assert.Contains(t, h.Get("Content-Security-Policy"), "script-src 'self'", path)
					assert.NotContains(t, h.Get("Content-Security-Policy"), "unsafe-inline", path)
					assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), path)
				}
			})
		})
	}
}

// TestRedaction: the store URL on every page goes through RedactURL.
func TestRedaction(t *testing.T) {
	s, _ := newStore(t, backends[0].open)
	srv := serve(t, console.Config{Store: s, StoreURL: "postgres://app:hunter2@db.example/events?sslmode=require&password=hunter3"})
	for _, path := range []string{"/streams", "/log", "/tail", "/subscriptions", "/stream?id=Nope-1"} {
		_, body, _ := get(t, srv, path)
		assert.NotContains(t, body, "hunter", path)
		assert.Contains(t, body, "postgres://app:xxxxx@db.example/events", path)
	}
}

func TestAuth(t *testing.T) {
	const token = "0123456789abcdef-secret"
	s, _ := newStore(t, backends[0].open)
	srv := serve(t, console.Config{Store: s, StoreURL: "memory://", Token: token})
	noRedirect := *srv.Client()
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	tests := []struct {
		name   string
		path   string
		header []string
		want   int
	}{
		{"no token", "/streams", nil, http.StatusUnauthorized},
		{"no token, a browser", "/streams", []string{"Accept", "text/html"}, http.StatusSeeOther},
		{"wrong bearer", "/streams", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"bearer", "/streams", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"bearer, lower case", "/metrics", []string{"Authorization", "bearer " + token}, http.StatusOK},
		{"metrics without token", "/metrics", nil, http.StatusUnauthorized},
		{"live tail without token", "/tail/events", nil, http.StatusUnauthorized},
		{"token as cookie", "/streams", []string{"Cookie", "evs_console=" + token}, http.StatusUnauthorized},
		{"login form", "/login", nil, http.StatusOK},
		{"static", "/static/console.js", nil, http.StatusOK},
		{"any host with a token", "/login", []string{"Host", "console.example"}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tc.path, nil)
			require.NoError(t, err)
			for i := 0; i+1 < len(tc.header); i += 2 {
				req.Header.Set(tc.header[i], tc.header[i+1])
			}
			if h := req.Header.Get("Host"); h != "" {
				req.Host = h
			}
			resp, err := noRedirect.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}

	t.Run("login form", func(t *testing.T) {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		client := &http.Client{Jar: jar, Transport: srv.Client().Transport}
		post := func(tok string, header ...string) *http.Response {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"token": {tok}}.Encode()))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		assert.Equal(t, http.StatusUnauthorized, post("wrong").StatusCode)
		assert.Equal(t, http.StatusForbidden, post(token, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site").StatusCode,
			"a login posted by another site is refused")
		resp := post(token, "Origin", srv.URL)
		require.Equal(t, http.StatusOK, resp.StatusCode, "logged in and redirected to /streams")
		assert.Equal(t, "/streams", resp.Request.URL.Path)
		u, err := url.Parse(srv.URL)
		require.NoError(t, err)
		cookies := jar.Cookies(u)
		require.Len(t, cookies, 1)
		assert.NotContains(t, cookies[0].Value, token, "the cookie does not hold the token")
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/log", nil)
		require.NoError(t, err)
		resp, err = client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the cookie opens the pages")
	})
}

// TestLoopbackOnly: without a token, the console answers only requests
// naming this machine, so a web page cannot reach it through DNS
// rebinding.
func TestLoopbackOnly(t *testing.T) {
	s, _ := newStore(t, backends[0].open)
	srv := serve(t, console.Config{Store: s})
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:8080", http.StatusOK},
		{"localhost:8080", http.StatusOK},
		{"[::1]:8080", http.StatusOK},
		{"localhost", http.StatusOK},
		{"evil.example:8080", http.StatusMisdirectedRequest},
		{"10.0.0.1", http.StatusMisdirectedRequest},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/streams", nil)
		require.NoError(t, err)
		req.Host = tc.host
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, tc.want, resp.StatusCode, tc.host)
	}
}

func TestSubscriptionsPage(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, _ := newStore(t, b.open)
			fill(t, s)
			ctx := t.Context()
			require.NoError(t, s.SetCheckpoint(ctx, "projector", eventstore.Position{}))
			var third eventstore.Position
			n := 0
			for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{Limit: 3}) {
				require.NoError(t, err)
				third, n = ev.Position, n+1
			}
			require.Equal(t, 3, n)
			require.NoError(t, s.SetCheckpoint(ctx, eventstore.CheckpointName("orders", eventstore.Group{Member: 0, Size: 2}), third))
			srv := serve(t, console.Config{Store: s})
			body := mustGet(t, srv, "/subscriptions")
			assert.Regexp(t, `<td>projector</td>\s*<td class="num">0/0</td>\s*<td class="num">8</td>`, body)
			assert.Regexp(t, `<td>\$orders\[0/2\]</td>\s*<td class="num">`+regexp.QuoteMeta(third.String())+`</td>\s*<td class="num">5</td>`, body)
			assert.NotContains(t, body, "<h3>orders</h3>", "a hash-split subscription has no leases: no group shown")

			// A running consumer group member: its leases, by the group's name.
			gctx, stop := context.WithCancel(ctx)
			caughtUp := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- s.SubscribeGroup(gctx, eventstore.GroupOptions{
					SubscribeOptions: eventstore.SubscribeOptions{Name: "projectors",
						OnCaughtUp: func(eventstore.SubscriptionState) { close(caughtUp) }},
					Member: "pod-a", Partitions: 2,
				}, func(context.Context, eventstore.RecordedEvent) error { return nil })
			}()
			select {
			case <-caughtUp:
			case <-time.After(10 * time.Second):
				t.Fatal("the group member did not catch up within 10s")
			}
			body = mustGet(t, srv, "/subscriptions?group=projectors")
			stop()
			require.ErrorIs(t, <-done, context.Canceled)
			assert.Contains(t, body, "<h3>projectors</h3>")
			assert.Regexp(t, `<tr><td>partition/2/0</td><td>pod-a</td><td>true</td>`, body)
			assert.Regexp(t, `<tr><td>partition/2/1</td><td>pod-a</td><td>true</td>`, body)
		})
	}
}

func TestMetrics(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, _ := newStore(t, b.open)
			fill(t, s)
			ctx := t.Context()
			require.NoError(t, s.SetCheckpoint(ctx, "projector", eventstore.Position{}))
			require.NoError(t, s.SetCheckpoint(ctx, `quote"and\back`, eventstore.Position{}))
			reader, mp := newMeterProvider(t)
			m := mp.Meter("github.com/eventkit/eventstore")
			appends, err := m.Int64Counter("eventstore.appends", metricDescription("Appends by outcome."))
			require.NoError(t, err)
			appends.Add(ctx, 3, outcome("ok"))
			appends.Add(ctx, 1, outcome("conflict"))
			latency, err := m.Float64Histogram("eventstore.append.duration", metricUnit("s"), histogramBounds(0.01, 0.1))
			require.NoError(t, err)
			latency.Record(ctx, 0.005)
			latency.Record(ctx, 0.05)
			latency.Record(ctx, 5)
			lag, err := m.Int64UpDownCounter("eventstore.subscription.lag.events")
			require.NoError(t, err)
			lag.Add(ctx, 7)

			srv := serve(t, console.Config{Store: s, Metrics: reader})
			code, body, h := get(t, srv, "/metrics")
			require.Equal(t, http.StatusOK, code, body)
			assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", h.Get("Content-Type"))
			for _, want := range []string{
				"# HELP eventstore_appends_total Appends by outcome.\n# TYPE eventstore_appends_total counter\n",
				`eventstore_appends_total{outcome="ok"} 3` + "\n",
				`eventstore_appends_total{outcome="conflict"} 1` + "\n",
				"# TYPE eventstore_append_duration_seconds histogram\n",
				`eventstore_append_duration_seconds_bucket{le="0.01"} 1` + "\n",
				`eventstore_append_duration_seconds_bucket{le="0.1"} 2` + "\n",
				`eventstore_append_duration_seconds_bucket{le="+Inf"} 3` + "\n",
				"eventstore_append_duration_seconds_sum 5.055\n",
				"eventstore_append_duration_seconds_count 3\n",
				"# TYPE eventstore_subscription_lag_events gauge\neventstore_subscription_lag_events 7\n",
				"# TYPE eventstore_console_checkpoint_lag_events gauge\n",
				`eventstore_console_checkpoint_lag_events{checkpoint="projector"} 8` + "\n",
				`eventstore_console_checkpoint_lag_events{checkpoint="quote\"and\\back"} 8` + "\n",
				`eventstore_console_checkpoint_lag_seconds{checkpoint="projector"} `,
			} {
				assert.Contains(t, body, want)
			}
			assertExposition(t, body)

			// The lag is computed on each scrape.
			var last eventstore.Position
			for ev, err := range s.ReadAll(ctx, eventstore.ReadAllOptions{}) {
				require.NoError(t, err)
				last = ev.Position
			}
			require.NoError(t, s.SetCheckpoint(ctx, "projector", last))
			body = mustGet(t, srv, "/metrics")
			assert.Contains(t, body, `eventstore_console_checkpoint_lag_events{checkpoint="projector"} 0`+"\n")
			assert.Contains(t, body, `eventstore_console_checkpoint_lag_seconds{checkpoint="projector"} 0`+"\n")
		})
	}
}

// assertExposition checks every line of a text exposition is a comment or
// a sample "name{labels} value" whose family was declared by a TYPE line.
func assertExposition(t *testing.T, body string) {
	t.Helper()
	sampleLine := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? (\S+)$`)
	typed := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			typed[strings.Fields(f)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if !assert.NotNil(t, m, "not a sample line: %q", line) {
			continue
		}
		name := m[1]
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && typed[base] {
				name = base
			}
		}
		assert.True(t, typed[name], "sample %q before its TYPE line", line)
		_, err := strconv.ParseFloat(m[3], 64)
		assert.NoError(t, err, line)
	}
}

// sseMessage is one server-sent event.
type sseMessage struct{ id, event, data string }

// readSSE sends the messages of an event stream to a channel until it ends.
func readSSE(r io.Reader) <-chan sseMessage {
	ch := make(chan sseMessage)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" || m.data != "" {
					ch <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	return ch
}

// next returns the next message, failing after a deadline.
func next(t testing.TB, ch <-chan sseMessage) sseMessage {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "the event stream ended")
		return m
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no server-sent event within 10s")
	}
	return sseMessage{}
}

func TestTailEvents(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s, _ := newStore(t, b.open)
			fill(t, s)
			c, err := console.New(console.Config{Store: s})
			require.NoError(t, err)
			srv := httptest.NewServer(c)
			defer srv.Close()

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/tail/events?category=Order,Invoice&type=OrderPlaced", nil)
			require.NoError(t, err)
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
			msgs := readSSE(resp.Body)
			require.Equal(t, "ready", next(t, msgs).event)

			// Only events appended from now on, and only those the filter keeps.
			_, err = s.Append(t.Context(), "Payment-2", eventstore.Any, eventstore.NewEvent("OrderPlaced", []byte(`{}`)))
			require.NoError(t, err)
			_, err = s.Append(t.Context(), "Order-9", eventstore.Any, eventstore.NewEvent("OrderShipped", []byte(`{}`)))
			require.NoError(t, err)
			res, err := s.Append(t.Context(), "Order-9", eventstore.Any, eventstore.NewEvent("OrderPlaced", []byte(`{"x":"<b>"}`)))
			require.NoError(t, err)

			m := next(t, msgs)
			assert.Equal(t, "event", m.event)
			assert.Equal(t, res.Position.String(), m.id, "the id is the position, for Last-Event-ID")
			var ev map[string]any
			require.NoError(t, json.Unmarshal([]byte(m.data), &ev))
			assert.Equal(t, "Order-9", ev["stream"])
			assert.Equal(t, float64(2), ev["version"])
			assert.Equal(t, "OrderPlaced", ev["type"])
			assert.Equal(t, `{"x":"<b>"}`, ev["preview"])
			assert.Equal(t, "/event?stream=Order-9&version=2", ev["link"])
			assert.NotContains(t, m.data, "<b>", "JSON escapes <")

			// The client goes: the handler stops (Close waits for it).
			cancel()
			closed := make(chan struct{})
			go func() { srv.Close(); close(closed) }()
			select {
			case <-closed:
			case <-time.After(10 * time.Second):
				t.Fatal("the live tail did not stop when its client went")
			}
		})
	}
}

// TestTailResumes: a reconnecting browser sends the last id it saw, and
// the tail goes on after it.
func TestTailResumes(t *testing.T) {
	s, _ := newStore(t, backends[0].open)
	fill(t, s)
	var second eventstore.Position
	for ev, err := range s.ReadAll(t.Context(), eventstore.ReadAllOptions{Limit: 2}) {
		require.NoError(t, err)
		second = ev.Position
	}
	srv := serve(t, console.Config{Store: s})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/tail/events", nil)
	require.NoError(t, err)
	req.Header.Set("Last-Event-ID", second.String())
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	msgs := readSSE(resp.Body)
	require.Equal(t, "ready", next(t, msgs).event)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(next(t, msgs).data), &ev))
	assert.Equal(t, "Order-1", ev["stream"])
	assert.Equal(t, float64(3), ev["version"], "the event after the last one seen")
}

func TestNewRejects(t *testing.T) {
	s, _ := newStore(t, backends[0].open)
	for _, tc := range []struct {
		name string
		cfg  console.Config
	}{
		{"no store", console.Config{}},
		{"negative page size", console.Config{Store: s, PageSize: -1}},
		{"page size too large", console.Config{Store: s, PageSize: console.MaxPageSize + 1}},
	} {
		_, err := console.New(tc.cfg)
		assert.Error(t, err, tc.name)
	}
}

// newMeterProvider returns an SDK MeterProvider and the reader the console
// collects, as evs serve builds them.
func newMeterProvider(t testing.TB) (*sdkmetric.ManualReader, *sdkmetric.MeterProvider) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { assert.NoError(t, mp.Shutdown(context.Background())) })
	return reader, mp
}

func metricDescription(d string) metric.Int64CounterOption { return metric.WithDescription(d) }

func metricUnit(u string) metric.Float64HistogramOption { return metric.WithUnit(u) }

func histogramBounds(b ...float64) metric.Float64HistogramOption {
	return metric.WithExplicitBucketBoundaries(b...)
}

func outcome(o string) metric.AddOption {
	return metric.WithAttributes(attribute.String("outcome", o))
}

// TestPageFailsAfterItStarted: a read that fails once the page has begun
// (here the store is closed) ends the rows with the error on the page.
func TestPageFailsAfterItStarted(t *testing.T) {
	s, _ := backends[0].open(t)
	fill(t, s)
	srv := serve(t, console.Config{Store: s})
	require.NoError(t, s.Close())
	body := mustGet(t, srv, "/log")
	assert.Contains(t, body, `<p class="error" id="read-error">Reading failed: eventstore: read all: store is closed</p>`)
	code, body, _ := get(t, srv, "/stream?id=Order-1")
	assert.Equal(t, http.StatusInternalServerError, code)
	assert.Contains(t, body, "store is closed")
}

// TestStoreMetrics checks /metrics shows what the Store itself measures
// through the MeterProvider it was opened with: appends by outcome, events
// and bytes appended, and the append duration histogram.
func TestStoreMetrics(t *testing.T) {
	reader, mp := newMeterProvider(t)
	s := eventstore.New(memory.New(), eventstore.Options{MeterProvider: mp})
	t.Cleanup(func() { assert.NoError(t, s.Close()) })
	ctx := t.Context()
	for range 3 {
		_, err := s.Append(ctx, "Order-1", eventstore.Any, eventstore.NewEvent("Placed", []byte(`{"n":1}`)), eventstore.NewEvent("Paid", []byte(`{}`)))
		require.NoError(t, err)
	}
	_, err := s.Append(ctx, "Order-1", eventstore.NoStream, eventstore.NewEvent("Placed", []byte(`{}`)))
	require.ErrorIs(t, err, eventstore.ErrWrongExpectedVersion)

	body := mustGet(t, serve(t, console.Config{Store: s, Metrics: reader}), "/metrics")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^eventstore_appends_total\{[^}]*outcome="ok"[^}]*\} 3$`),
		regexp.MustCompile(`(?m)^eventstore_appends_total\{[^}]*outcome="conflict"[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^eventstore_conflicts_total\{[^}]*\} 1$`),
		regexp.MustCompile(`(?m)^eventstore_events_appended_total\{[^}]*\} 6$`),
		regexp.MustCompile(`(?m)^eventstore_bytes_appended_total\{[^}]*\} 27$`), // 3 appends of 7 + 2 bytes of data, no metadata
		regexp.MustCompile(`(?m)^eventstore_operation_duration_seconds_count\{[^}]*operation="append"[^}]*\} 4$`),
		regexp.MustCompile(`(?m)^eventstore_appends_total\{[^}]*db_system_name="memory"`),
	} {
		assert.Regexp(t, want, body)
	}
	assertExposition(t, body)
}
