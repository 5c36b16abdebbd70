package conformance

import (
	"slices"
	"testing"
)

func TestParseScaleSizes(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"1000000,10000000", []int{1_000_000, 10_000_000}, true},
		{"1M, 10M", []int{1_000_000, 10_000_000}, true},
		{"250k", []int{250_000}, true},
		{"10M,1M", []int{10_000_000, 1_000_000}, true},
		{"100k", nil, false}, // under 2 × ScaleTail
		{"1G", nil, false},
		{"", nil, false},
		{"-1M", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseScaleSizes(tc.in)
			if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
				t.Errorf("parseScaleSizes(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestSizeName(t *testing.T) {
	for n, want := range map[int]string{1_000_000: "1M", 10_000_000: "10M", 250_000: "250k", 1_234_567: "1234567"} {
		if got := sizeName(n); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", n, got, want)
		}
	}
}
