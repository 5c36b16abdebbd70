#!/usr/bin/env bash
# Makes sure a Chromium is installed for the console's browser test
# (internal/console/browser_test.go). Sourced by test.sh. When none is on
# $PATH it installs Debian's chromium with apt-get where it can (root, or
# sudo without a password). Under CI=true a Chromium that cannot be installed
# fails the run; otherwise the browser test skips, saying why.

have_chromium() {
	local name
	for name in chromium chromium-browser google-chrome google-chrome-stable headless-shell; do
		command -v "$name" >/dev/null 2>&1 && return 0
	done
	return 1
}

install_chromium() {
	local sudo=()
	if [[ $(id -u) -ne 0 ]]; then
		sudo -n true 2>/dev/null || return 1
		sudo=(sudo -n)
	fi
	command -v apt-get >/dev/null 2>&1 || return 1
	echo "installing chromium with apt-get for the browser test" >&2
	"${sudo[@]}" apt-get update -qq >&2 &&
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium >&2
}

if ! have_chromium; then
	if [[ "${CI:-}" == "true" ]]; then
		install_chromium && have_chromium || { echo "chromium could not be installed (CI=true: failing)" >&2; exit 1; }
	else
		install_chromium && have_chromium || echo "no chromium: the browser test will skip" >&2
	fi
fi
