# Test, benchmark and demo targets. `make test` is what CI runs.
GO ?= go
export CGO_ENABLED = 1

.PHONY: test demo bench lint vet

test:
	CI=$${CI:-true} ./scripts/test.sh

demo:
	$(GO) run ./examples/quickstart

bench:
	./scripts/bench.sh

vet:
	$(GO) vet ./...

lint: vet
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed: skipped"; fi
