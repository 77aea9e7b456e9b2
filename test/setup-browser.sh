#!/usr/bin/env bash
# Installs what the browser tests (test/Iris.Tests/Pages) need: Debian's Chromium at /usr/bin/chromium, which
# Microsoft.Playwright drives through its executable path (Playwright's own browser download is not used). Needs root
# and apt-get; where either is missing, or the install fails, it says so and the browser tests are skipped, saying why.
set -uo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed, and this needs root and apt-get to install it: the browser tests will be skipped"
  exit 0
fi

if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/iris-setup-browser.log 2>&1; then
  echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
else
  echo "chromium: could not be installed (see /tmp/iris-setup-browser.log): the browser tests will be skipped"
fi
