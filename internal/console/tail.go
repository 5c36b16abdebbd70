package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/eventkit/eventstore"
)

// tailPage is the live tail: its script opens /tail/events.
type tailPage struct {
	base
	Categories, Types string
	Source            string // the URL of the event stream, with the filter
}

func (c *Console) tail(w http.ResponseWriter, r *http.Request) {
	p := tailPage{base: c.base("Live tail", "tail"), Categories: r.FormValue("category"), Types: r.FormValue("type")}
	p.Source = link("/tail/events", map[string][]string{"category": {p.Categories}, "type": {p.Types}})
	c.render(w, r, "tail.html", p)
}

// tailEvent is one event of the live tail, as the script receives it.
type tailEvent struct {
	Stream     string `json:"stream"`
	Version    uint64 `json:"version"`
	Position   string `json:"position"`
	Type       string `json:"type"`
	RecordedAt string `json:"recorded_at"`
	Preview    string `json:"preview"`
	Link       string `json:"link"`
}

// tailEvents streams the global log from its end as server-sent events,
// through a subscription without a name (nothing is saved in the store),
// until the client goes or the server shuts down. Each message's id is the
// event's position: a browser that reconnects sends it as Last-Event-ID,
// and the tail resumes after it, missing nothing.
func (c *Console) tailEvents(w http.ResponseWriter, r *http.Request) {
	filter := eventstore.Filter{Categories: splitList(r.FormValue("category")), EventTypes: splitList(r.FormValue("type"))}
	ctx := r.Context()
	opts := eventstore.SubscribeOptions{Filter: filter}
	if pos, err := eventstore.ParsePosition(r.Header.Get("Last-Event-ID")); err == nil {
		opts.After = pos
	} else {
		// The end of the log now, rather than FromEnd: an event appended
		// once the client has the ready message is sure to come.
		head, err := c.cfg.Store.Head(ctx)
		if err != nil {
			c.failErr(w, r, err)
			return
		}
		opts.After = head
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// The first message says the subscription is starting: the script shows
	// "live" from then on.
	if _, err := fmt.Fprint(w, "retry: 2000\nevent: ready\ndata: {}\n\n"); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		c.log.WarnContext(r.Context(), "console: live tail cannot flush", "err", err)
		return
	}
	err := c.cfg.Store.Subscribe(ctx, opts, func(_ context.Context, ev eventstore.RecordedEvent) error {
		b, err := json.Marshal(tailEvent{Stream: ev.StreamID, Version: ev.Version, Position: ev.Position.String(), Type: ev.Type,
			RecordedAt: ev.RecordedAt.UTC().Format(timeLayout), Preview: preview(ev), Link: eventLink(ev.StreamID, ev.Version)})
		if err != nil {
			return err
		}
		// json.Marshal escapes <, > and & and writes no newline, so the data
		// is one line of SSE.
		if _, err := fmt.Fprintf(w, "id: %s\nevent: event\ndata: %s\n\n", ev.Position, b); err != nil {
			return err
		}
		return rc.Flush()
	})
	if err != nil && ctx.Err() == nil {
		// The subscription failed while the client is still there: tell it.
		msg, _ := json.Marshal(map[string]string{"error": strings.TrimPrefix(err.Error(), "eventstore: ")})
		fmt.Fprintf(w, "event: failed\ndata: %s\n\n", msg)
		rc.Flush()
		c.log.WarnContext(ctx, "console: live tail failed", "err", err)
	}
}
