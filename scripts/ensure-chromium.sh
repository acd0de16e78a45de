#!/usr/bin/env bash
# Makes sure headless Chromium and chromedriver are installed, for the observer's browser test
# (tests/observer_browser.rs). Installs Debian's packages (chromium, chromium-driver) with
# apt-get when they are missing and this runs as root; otherwise says how to install them.
# Exits 0 either way: without them that one test skips (and says so), it does not fail.
set -euo pipefail

have() { [ -x "$1" ] || command -v "$(basename "$1")" >/dev/null 2>&1; }

if have /usr/bin/chromium && have /usr/bin/chromedriver; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: installing chromium and chromium-driver (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; then
        echo "ensure-chromium: installed $(chromedriver --version 2>/dev/null || echo chromedriver)" >&2
        exit 0
    fi
    echo "ensure-chromium: apt-get could not install chromium; the browser test will skip" >&2
    exit 0
fi
echo "ensure-chromium: chromium or chromedriver not found; install them with: apt-get install chromium chromium-driver (the browser test skips without them)" >&2
exit 0
