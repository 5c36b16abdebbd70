package dynamodb

import (
	"slices"
	"testing"
)

// TestOrdererChoose: the orderer takes inbox appends in arrival order, but
// an append only once its stream's previous version is placed, before it
// or earlier in the same pass; an import's runs count per stream; what
// does not fit one transaction waits.
func TestOrdererChoose(t *testing.T) {
	app := func(arrival uint64, stream string, first, count uint64) candidate {
		return candidate{arrival: arrival, bytes: 100, entry: logEntry{start: arrival, count: count,
			runs: []logRun{{stream: stream, first: first, count: count}}}}
	}
	imp := func(arrival uint64, runs ...logRun) candidate {
		c := candidate{arrival: arrival, bytes: 100, entry: logEntry{start: arrival, runs: runs}}
		for i := range c.entry.runs {
			c.entry.runs[i].offset = c.entry.count
			c.entry.count += c.entry.runs[i].count
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		cands    []candidate
		placed   []streamVersion
		excluded []int
		want     []int
	}{
		{"new streams in arrival order", []candidate{app(1, "A", 1, 1), app(2, "B", 1, 2)}, nil, nil, []int{0, 1}},
		{"a later version that arrived first waits for its predecessor in the pass",
			[]candidate{app(1, "A", 2, 1), app(2, "A", 1, 1)}, nil, nil, []int{1, 0}},
		{"a predecessor placed before", []candidate{app(1, "A", 3, 1)}, []streamVersion{{"A", 2}}, nil, []int{0}},
		{"a predecessor not placed and not in the pass", []candidate{app(1, "A", 3, 1), app(2, "B", 1, 1)}, nil, nil, []int{1}},
		{"an excluded predecessor holds its stream back",
			[]candidate{app(1, "A", 1, 1), app(2, "A", 2, 1), app(3, "B", 1, 1)}, nil, []int{0}, []int{2}},
		{"an import's runs of one stream follow each other",
			[]candidate{imp(1, logRun{stream: "A", first: 1, count: 1}, logRun{stream: "B", first: 1, count: 1}, logRun{stream: "A", first: 2, count: 1})}, nil, nil, []int{0}},
		{"an import waits for each of its streams",
			[]candidate{imp(1, logRun{stream: "A", first: 1, count: 1}, logRun{stream: "B", first: 4, count: 1})}, nil, nil, nil},
		{"100 items at most (3 of the orderer's, 1 per append, its events): what does not fit waits, what fits fills",
			[]candidate{app(1, "A", 1, 90), app(2, "B", 1, 6), app(3, "C", 1, 1)}, nil, nil, []int{0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			placed := map[streamVersion]bool{}
			for _, sv := range tc.placed {
				placed[sv] = true
			}
			excluded := map[int]bool{}
			for _, i := range tc.excluded {
				excluded[i] = true
			}
			got := (&orderer{}).choose(tc.cands, placed, excluded)
			if !slices.Equal(got, tc.want) {
				t.Errorf("choose = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMergeOffered: appends offered by the driver join the inbox as read,
// once, unless the last pass placed them, in arrival order.
func TestMergeOffered(t *testing.T) {
	c := func(shard int, arrival uint64) candidate { return candidate{shard: shard, arrival: arrival} }
	got := mergeOffered([]candidate{c(0, 5), c(1, 9)}, []candidate{c(0, 5), c(2, 7), c(3, 1)}, map[inboxKey]bool{{3, 1}: true})
	var keys []inboxKey
	for _, g := range got {
		keys = append(keys, inboxKey{g.shard, g.arrival})
	}
	if want := []inboxKey{{0, 5}, {2, 7}, {1, 9}}; !slices.Equal(keys, want) {
		t.Errorf("mergeOffered = %v, want %v", keys, want)
	}
}
