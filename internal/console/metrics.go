package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventstore"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// scrapeTimeout bounds one scrape: collecting the metrics and the lag of
// every checkpoint.
const scrapeTimeout = 30 * time.Second

// metrics serves the Prometheus text exposition (version 0.0.4) of the
// store's OpenTelemetry metrics, collected from Config.Metrics, followed by
// the console's own gauges: the lag of every checkpoint, computed now.
func (c *Console) metrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), scrapeTimeout)
	defer cancel()
	var rm metricdata.ResourceMetrics
	if c.cfg.Metrics != nil {
		if err := c.cfg.Metrics.Collect(ctx, &rm); err != nil {
			c.log.WarnContext(ctx, "console: collecting metrics failed", "err", err)
			http.Error(w, "collecting metrics failed", http.StatusInternalServerError)
			return
		}
	}
	fams := families(rm)
	lag, err := c.lagFamilies(ctx)
	if err != nil {
		c.log.WarnContext(ctx, "console: checkpoint lag failed", "err", err)
		http.Error(w, "reading checkpoint lag failed: "+strings.TrimPrefix(err.Error(), "eventstore: "), http.StatusInternalServerError)
		return
	}
	fams = append(fams, lag...)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	writeFamilies(bw, fams)
	bw.Flush()
}

// family is one metric of the exposition: its samples share a name prefix,
// HELP and TYPE.
type family struct {
	name, help, typ string
	samples         []sample
}

type sample struct {
	suffix string // "", "_bucket", "_sum", "_count"
	labels []label
	value  float64
}

type label struct{ name, value string }

// lagFamilies are the console's gauges of checkpoint lag: events behind
// (at most eventstore.MaxLagCount) and seconds since the oldest of them was
// recorded. A driver without checkpoints has none.
func (c *Console) lagFamilies(ctx context.Context) ([]family, error) {
	cps, err := c.cfg.Store.Checkpoints(ctx)
	if errors.Is(err, eventstore.ErrNotSupported) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	events := family{name: "eventstore_console_checkpoint_lag_events", typ: "gauge",
		help: fmt.Sprintf("Events after the checkpoint, counted on scrape up to %d.", eventstore.MaxLagCount)}
	seconds := family{name: "eventstore_console_checkpoint_lag_seconds", typ: "gauge",
		help: "Seconds since the oldest event after the checkpoint was recorded; 0 when none is."}
	now := time.Now()
	for _, cp := range cps {
		lag, err := c.cfg.Store.Lag(ctx, cp.Position, eventstore.Filter{})
		if err != nil {
			return nil, err
		}
		l := []label{{"checkpoint", cp.Name}}
		events.samples = append(events.samples, sample{labels: l, value: float64(lag.Events)})
		age := 0.0
		if !lag.Oldest.IsZero() {
			age = max(0, now.Sub(lag.Oldest).Seconds())
		}
		seconds.samples = append(seconds.samples, sample{labels: l, value: age})
	}
	return []family{events, seconds}, nil
}

// families converts OpenTelemetry metrics to Prometheus families: dots and
// other characters Prometheus does not allow become "_", the unit is added
// as a suffix for seconds, milliseconds and bytes, monotonic sums are
// counters ending in "_total", other sums and gauges are gauges, and
// histograms have buckets. Exponential histograms and summaries are left
// out. Metrics of the same name from several scopes merge.
func families(rm metricdata.ResourceMetrics) []family {
	byName := map[string]*family{}
	var order []string
	get := func(name, help, typ string) *family {
		f, ok := byName[name]
		if !ok {
			f = &family{name: name, help: help, typ: typ}
			byName[name] = f
			order = append(order, name)
		}
		return f
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			name := promName(m.Name, m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				addSum(get, name, m.Description, d.IsMonotonic, d.DataPoints)
			case metricdata.Sum[float64]:
				addSum(get, name, m.Description, d.IsMonotonic, d.DataPoints)
			case metricdata.Gauge[int64]:
				addPoints(get(name, m.Description, "gauge"), d.DataPoints)
			case metricdata.Gauge[float64]:
				addPoints(get(name, m.Description, "gauge"), d.DataPoints)
			case metricdata.Histogram[int64]:
				addHistogram(get(name, m.Description, "histogram"), d.DataPoints)
			case metricdata.Histogram[float64]:
				addHistogram(get(name, m.Description, "histogram"), d.DataPoints)
			}
		}
	}
	slices.Sort(order)
	out := make([]family, len(order))
	for i, n := range order {
		out[i] = *byName[n]
	}
	return out
}

func addSum[N int64 | float64](get func(name, help, typ string) *family, name, help string, monotonic bool, pts []metricdata.DataPoint[N]) {
	if !monotonic {
		addPoints(get(name, help, "gauge"), pts)
		return
	}
	if !strings.HasSuffix(name, "_total") {
		name += "_total"
	}
	addPoints(get(name, help, "counter"), pts)
}

func addPoints[N int64 | float64](f *family, pts []metricdata.DataPoint[N]) {
	for _, p := range pts {
		f.samples = append(f.samples, sample{labels: labels(p.Attributes), value: float64(p.Value)})
	}
}

func addHistogram[N int64 | float64](f *family, pts []metricdata.HistogramDataPoint[N]) {
	for _, p := range pts {
		ls := labels(p.Attributes)
		var cum uint64
		for i, n := range p.BucketCounts {
			cum += n
			le := "+Inf"
			if i < len(p.Bounds) {
				le = strconv.FormatFloat(p.Bounds[i], 'g', -1, 64)
			}
			f.samples = append(f.samples, sample{suffix: "_bucket", labels: append(slices.Clone(ls), label{"le", le}), value: float64(cum)})
		}
		if len(p.BucketCounts) == 0 {
			f.samples = append(f.samples, sample{suffix: "_bucket", labels: append(slices.Clone(ls), label{"le", "+Inf"}), value: float64(p.Count)})
		}
		f.samples = append(f.samples,
			sample{suffix: "_sum", labels: ls, value: float64(p.Sum)},
			sample{suffix: "_count", labels: ls, value: float64(p.Count)})
	}
}

// labels turns attributes into labels with valid names, in key order.
func labels(set attribute.Set) []label {
	out := make([]label, 0, set.Len())
	for it := set.Iter(); it.Next(); {
		kv := it.Attribute()
		out = append(out, label{sanitize(string(kv.Key)), kv.Value.String()})
	}
	return out
}

// unitSuffixes are the units whose name Prometheus puts at the end of a
// metric's name.
var unitSuffixes = map[string]string{"s": "_seconds", "ms": "_milliseconds", "By": "_bytes"}

// promName is the Prometheus name of an OpenTelemetry metric: the unit's
// word is added at the end unless the name already holds it as a word
// (eventstore.bytes.appended stays eventstore_bytes_appended).
func promName(name, unit string) string {
	n := sanitize(name)
	if suf, ok := unitSuffixes[unit]; ok && !strings.HasSuffix(n, suf) && !strings.Contains(n+"_", suf+"_") {
		n += suf
	}
	return n
}

// sanitize replaces what a Prometheus metric or label name may not hold
// with "_".
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		ok := c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// writeFamilies writes the text exposition of fams.
func writeFamilies(w io.Writer, fams []family) {
	for _, f := range fams {
		if f.help != "" {
			fmt.Fprintf(w, "# HELP %s %s\n", f.name, escapeHelp(f.help))
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", f.name, f.typ)
		for _, s := range f.samples {
			io.WriteString(w, f.name+s.suffix)
			if len(s.labels) > 0 {
				io.WriteString(w, "{")
				for i, l := range s.labels {
					if i > 0 {
						io.WriteString(w, ",")
					}
					fmt.Fprintf(w, "%s=\"%s\"", l.name, escapeLabel(l.value))
				}
				io.WriteString(w, "}")
			}
			fmt.Fprintf(w, " %s\n", formatValue(s.value))
		}
	}
}

func formatValue(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
