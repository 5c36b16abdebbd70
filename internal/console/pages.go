package console

import (
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/eventkit/eventstore"
)

// pageLimit reads ?limit=, defaulting to the configured page size.
func (c *Console) pageLimit(r *http.Request) (int, error) {
	s := r.FormValue("limit")
	if s == "" {
		return c.cfg.PageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, fmt.Errorf("limit %q: want 1 to %d", s, MaxPageSize)
	}
	return n, nil
}

// link returns path with the query q, dropping empty values.
func link(path string, q url.Values) string {
	for k, v := range q {
		if len(v) == 0 || v[0] == "" {
			delete(q, k)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// streamsPage lists streams by prefix or category.
type streamsPage struct {
	base
	Prefix, Category string
	Streams          []eventstore.StreamInfo
	Next             string // link to the next page; "" on the last
	NotSupported     bool   // the driver cannot list: only the open-by-ID form
}

func (c *Console) streams(w http.ResponseWriter, r *http.Request) {
	limit, err := c.pageLimit(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	p := streamsPage{base: c.base("Streams", "streams"), Prefix: r.FormValue("prefix"), Category: r.FormValue("category")}
	page, err := c.cfg.Store.ListStreams(r.Context(), eventstore.ListStreamsOptions{
		Prefix: p.Prefix, Category: p.Category, Cursor: r.FormValue("cursor"), Limit: limit})
	switch {
	case errors.Is(err, eventstore.ErrNotSupported):
		p.NotSupported = true
	case err != nil:
		c.failErr(w, r, err)
		return
	}
	p.Streams = page.Streams
	if page.Next != "" {
		p.Next = link("/streams", url.Values{"prefix": {p.Prefix}, "category": {p.Category},
			"cursor": {page.Next}, "limit": {r.FormValue("limit")}})
	}
	c.render(w, r, "streams.html", p)
}

// streamPage shows one page of a stream's events.
type streamPage struct {
	base
	ID      string
	Version uint64 // the stream's version when the page was read
	Newest  bool   // newest first
	Events  iter.Seq[eventstore.RecordedEvent]
	// Older and Newer link to the neighbouring pages; "" when there is none.
	Older, Newer string
	// Oldest and Latest link to the first and the last page.
	Oldest, Latest string
	errHolder
}

// errHolder keeps the error that ended a sequence the template ranged
// over: the template shows it after the rows.
type errHolder struct{ err error }

// Err is the error that ended the rows, or nil.
func (e *errHolder) Err() error { return e.err }

// rows adapts a read to what a template ranges over, keeping its error.
func (e *errHolder) rows(seq iter.Seq2[eventstore.RecordedEvent, error]) iter.Seq[eventstore.RecordedEvent] {
	return func(yield func(eventstore.RecordedEvent) bool) {
		for ev, err := range seq {
			if err != nil {
				e.err = err
				return
			}
			if !yield(ev) {
				return
			}
		}
	}
}

func (c *Console) stream(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("id")
	limit, err := c.pageLimit(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	var from uint64
	if s := r.FormValue("from"); s != "" {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil || from == 0 {
			c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("from %q: want a version, 1 or more", s))
			return
		}
	}
	order := r.FormValue("order")
	if order != "" && order != "newest" && order != "oldest" {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("order %q: want newest or oldest", order))
		return
	}
	v, err := c.cfg.Store.StreamVersion(r.Context(), id)
	if err != nil {
		c.failErr(w, r, err)
		return
	}
	if v == 0 {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("stream %q has no events", id))
		return
	}
	p := &streamPage{base: c.base(id, "streams"), ID: id, Version: v, Newest: order != "oldest"}
	p.Title = "Stream " + id
	at := func(from uint64, order string) string {
		return link("/stream", url.Values{"id": {id}, "from": {strconv.FormatUint(from, 10)}, "order": {order}, "limit": {r.FormValue("limit")}})
	}
	n := uint64(limit)
	if p.Newest {
		if from == 0 || from > v {
			from = v
		}
		if from > n {
			p.Older = at(from-n, "newest")
			p.Oldest = at(min(n, v), "newest")
		}
		if from < v {
			p.Newer = at(min(from+n, v), "newest")
			p.Latest = at(v, "newest")
		}
	} else {
		if from == 0 {
			from = 1
		}
		if from > 1 {
			p.Older = at(from-min(n, from-1), "oldest")
			p.Oldest = at(1, "oldest")
		}
		if from+n <= v {
			p.Newer = at(from+n, "oldest")
			p.Latest = at(v-min(v, n)+1, "oldest")
		}
	}
	p.Events = p.rows(c.cfg.Store.ReadStream(r.Context(), id, eventstore.ReadStreamOptions{From: from, Limit: limit, Backwards: p.Newest}))
	c.render(w, r, "stream.html", p)
}

// eventPage shows one event.
type eventPage struct {
	base
	Event    eventstore.RecordedEvent
	Data     string // pretty-printed JSON, or a hex dump
	DataNote string // what Data is, when it is not the whole data as JSON
	Metadata string // pretty-printed
}

func (c *Console) event(w http.ResponseWriter, r *http.Request) {
	id := r.FormValue("stream")
	version, err := strconv.ParseUint(r.FormValue("version"), 10, 64)
	if err != nil || version == 0 {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("version %q: want a version, 1 or more", r.FormValue("version")))
		return
	}
	var (
		ev    eventstore.RecordedEvent
		found bool
	)
	for e, err := range c.cfg.Store.ReadStream(r.Context(), id, eventstore.ReadStreamOptions{From: version, Limit: 1}) {
		if err != nil {
			c.failErr(w, r, err)
			return
		}
		ev, found = e, e.Version == version
	}
	if !found {
		c.fail(w, r, http.StatusNotFound, fmt.Sprintf("stream %q has no event at version %d", id, version))
		return
	}
	p := eventPage{base: c.base(fmt.Sprintf("Event %s@%d", id, version), "streams"), Event: ev}
	p.Data, p.DataNote = showData(ev)
	p.Metadata = prettyJSON(ev.Metadata)
	c.render(w, r, "event.html", p)
}

// logPage shows one page of the global log.
type logPage struct {
	base
	Categories, Types string // the filter as typed: comma-separated
	Newest            bool
	Events            iter.Seq[eventstore.RecordedEvent]
	errHolder
	next  func() string
	First string // link to the first page
}

// Next links to the next page: known only once the rows are written.
func (p *logPage) Next() string { return p.next() }

func (c *Console) globalLog(w http.ResponseWriter, r *http.Request) {
	limit, err := c.pageLimit(r)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	order := r.FormValue("order")
	if order != "" && order != "newest" && order != "oldest" {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("order %q: want newest or oldest", order))
		return
	}
	var cursor eventstore.Position
	if s := r.FormValue("cursor"); s != "" {
		if cursor, err = eventstore.ParsePosition(s); err != nil {
			c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("cursor %q: want a position such as 42/0", s))
			return
		}
	}
	p := &logPage{base: c.base("Global log", "log"), Categories: r.FormValue("category"), Types: r.FormValue("type"), Newest: order == "newest"}
	filter := eventstore.Filter{Categories: splitList(p.Categories), EventTypes: splitList(p.Types)}
	opts := eventstore.ReadAllOptions{Limit: limit, Filter: filter, Backwards: p.Newest}
	if p.Newest {
		opts.Before = cursor
	} else {
		opts.After = cursor
	}
	at := func(cursor string) string {
		return link("/log", url.Values{"category": {p.Categories}, "type": {p.Types}, "order": {order}, "cursor": {cursor}, "limit": {r.FormValue("limit")}})
	}
	if !cursor.IsZero() {
		p.First = at("")
	}
	// Fail before the page starts on a filter the store would reject.
	for _, cat := range filter.Categories {
		if err := eventstore.ValidateStreamID(cat); err != nil {
			c.fail(w, r, http.StatusBadRequest, "category filter: "+strings.TrimPrefix(err.Error(), "eventstore: "))
			return
		}
	}
	for _, t := range filter.EventTypes {
		if err := eventstore.ValidateEventType(t); err != nil {
			c.fail(w, r, http.StatusBadRequest, "type filter: "+strings.TrimPrefix(err.Error(), "eventstore: "))
			return
		}
	}
	var last eventstore.Position
	n := 0
	rows := p.rows(c.cfg.Store.ReadAll(r.Context(), opts))
	p.Events = func(yield func(eventstore.RecordedEvent) bool) {
		for ev := range rows {
			last, n = ev.Position, n+1
			if !yield(ev) {
				return
			}
		}
	}
	p.next = func() string {
		if n < limit || p.err != nil {
			return ""
		}
		return at(last.String())
	}
	c.render(w, r, "log.html", p)
}

// splitList splits a comma-separated filter, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// subscriptionsPage lists checkpoints and consumer groups.
type subscriptionsPage struct {
	base
	Checkpoints []checkpointRow
	Group       string // the group asked for with ?group=
	Groups      []groupRows
}

type checkpointRow struct {
	Name     string
	Position eventstore.Position
	Lag      eventstore.Lag
	LagErr   error
}

type groupRows struct {
	Name   string
	Leases []eventstore.GroupLease
	Err    error
}

func (c *Console) subscriptions(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := subscriptionsPage{base: c.base("Subscriptions", "subscriptions"), Group: r.FormValue("group")}
	cps, err := c.cfg.Store.Checkpoints(ctx)
	if err != nil && !errors.Is(err, eventstore.ErrNotSupported) {
		c.failErr(w, r, err)
		return
	}
	var groups []string
	seen := map[string]bool{}
	addGroup := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			groups = append(groups, name)
		}
	}
	addGroup(p.Group)
	for _, cp := range cps {
		row := checkpointRow{Name: cp.Name, Position: cp.Position}
		row.Lag, row.LagErr = c.cfg.Store.Lag(ctx, cp.Position, eventstore.Filter{})
		p.Checkpoints = append(p.Checkpoints, row)
		addGroup(groupOf(cp.Name))
	}
	// A name taken from a checkpoint may be a hash-split subscription
	// (Group in SubscribeOptions) rather than a leased consumer group: it is
	// shown only when it has leases. The group asked for is always shown.
	for _, g := range groups {
		leases, err := c.cfg.Store.GroupLeases(ctx, g)
		if errors.Is(err, eventstore.ErrNotSupported) || (err == nil && len(leases) == 0 && g != p.Group) {
			continue
		}
		p.Groups = append(p.Groups, groupRows{Name: g, Leases: leases, Err: err})
	}
	c.render(w, r, "subscriptions.html", p)
}

// groupOf returns the group a checkpoint name shows: "orders" for a group
// member's "$orders[0/2]" (see eventstore.CheckpointName), else "".
func groupOf(checkpoint string) string {
	name, ok := strings.CutPrefix(checkpoint, "$")
	if !ok || !strings.HasSuffix(name, "]") {
		return ""
	}
	i := strings.LastIndexByte(name, '[')
	if i <= 0 {
		return ""
	}
	return name[:i]
}
