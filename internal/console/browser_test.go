package console_test

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/eventkit/eventstore"
	"github.com/eventkit/eventstore/internal/console"
	"github.com/eventkit/eventstore/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browsers are the names Chromium goes by, tried in order.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// mustHaveChromium returns the path of a Chromium to drive. When there is
// none it skips t, saying how to install one; under CI=true it fails t
// (scripts/test.sh installs Debian's chromium there).
func mustHaveChromium(t testing.TB) string {
	t.Helper()
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	reason := "no Chromium found (looked for " + strings.Join(browsers, ", ") + " in $PATH): install it " +
		"(apt-get install chromium) to run the browser test"
	if testenv.InCI() {
		t.Fatalf("%s (CI=true: the browser test must run)", reason)
	}
	t.Skip(reason)
	return ""
}

// screenshotDir is where the browser test saves screenshots of the pages
// when EVS_SCREENSHOTS=1.
const screenshotDir = "../../docs/console"

// TestBrowser drives headless Chromium through the console: streams →
// stream → event → live tail, where an event appended meanwhile appears,
// and checks that an XSS payload in a stream ID, an event type and data
// stays inert text on every page.
func TestBrowser(t *testing.T) {
	exe := mustHaveChromium(t)
	s, _ := newStore(t, backends[0].open) // memory: it lists streams
	fill(t, s)
	require.NoError(t, s.SetCheckpoint(t.Context(), "projector", eventstore.Position{}))
	srv := serve(t, console.Config{Store: s, StoreURL: "memory://"})

	// Most of a run is starting Chromium (7.6 s of 10.5 s on a 2-core
	// machine at load 16); the deadline leaves room for a slower one.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in a container has no user namespace for the sandbox
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser() // before srv.Close (deferred by Cleanup): the tail's connection goes first

	shots := os.Getenv("EVS_SCREENSHOTS") == "1"
	if shots {
		require.NoError(t, os.MkdirAll(screenshotDir, 0o755))
	}
	screenshot := func(name string) {
		t.Helper()
		if !shots {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644))
	}
	inert := func(page string) {
		t.Helper()
		typ, err := chromedp.Run(bctx, chromedp.Evaluate[string](`typeof window.pwned`))
		require.NoError(t, err)
		assert.Equal(t, "undefined", typ, "%s: the XSS payload ran", page)
	}
	text := func(sel chromedp.ID) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		require.NoError(t, err)
		return s
	}

	// Streams: the list, then a click on a stream.
	start := time.Now()
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/streams"),
		chromedp.WaitVisible(chromedp.ID("streams")),
	))
	t.Logf("Chromium started and showed the first page in %v", time.Since(start).Round(time.Millisecond))
	defer func() { t.Logf("browsing took %v", time.Since(start).Round(time.Millisecond)) }()
	assert.Contains(t, text("streams"), "Order-1")
	assert.Contains(t, text("streams"), `Xss-<img src=x onerror="window.pwned=1">`, "the XSS stream ID is shown as text")
	inert("streams")
	screenshot("streams")

	_, err := chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`a[href="/stream?id=Order-1"]`)))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.ID("events"))))
	assert.Contains(t, text("events"), "OrderShipped")
	screenshot("stream")

	// Event: the newest of the stream, pretty-printed.
	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`a[href="/event?stream=Order-1&version=5"]`)))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.ID("data"))))
	assert.Contains(t, text("data"), "\"n\": 5,\n  \"items\": [")
	assert.Contains(t, text("metadata"), `"correlation_id": "c-42"`)
	screenshot("event")

	// The XSS event: its type and data are text.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/event?"+url.Values{"stream": {xssStream}, "version": {"1"}}.Encode()),
		chromedp.WaitVisible(chromedp.ID("data")),
	))
	assert.Equal(t, xssType, text("type"))
	assert.Contains(t, text("data"), `"html": "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\">"`)
	inert("event")

	// The global log, newest first, where the XSS event is on top.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/log?order=newest"),
		chromedp.WaitVisible(chromedp.ID("events")),
	))
	assert.Contains(t, text("events"), xssType)
	inert("log")
	screenshot("log")

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/subscriptions"),
		chromedp.WaitVisible(chromedp.ID("checkpoints")),
	))
	assert.Contains(t, text("checkpoints"), "projector")
	screenshot("subscriptions")

	// Live tail: once it is live, an append shows up as a row, its XSS
	// payload as text.
	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/tail"),
		chromedp.WaitVisible(chromedp.CSS(`#tail-status[data-state="live"]`)),
	))
	_, err = s.Append(t.Context(), "Order-77", eventstore.NoStream, eventstore.NewEvent("OrderPlaced", []byte(`{"n":77}`)))
	require.NoError(t, err)
	_, err = s.Append(t.Context(), xssStream, eventstore.Any, eventstore.NewEvent(xssType, []byte(xssData)))
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(bctx, chromedp.WaitVisible(chromedp.CSS(`#tail-rows tr:nth-child(2)`))))
	rows := text("tail-rows")
	assert.Contains(t, rows, "Order-77")
	assert.Contains(t, rows, xssType)
	assert.Contains(t, rows, `Xss-<img src=x onerror="window.pwned=1">`)
	assert.Contains(t, text("tail-status"), "2 events so far")
	inert("tail")
	screenshot("tail")
}
