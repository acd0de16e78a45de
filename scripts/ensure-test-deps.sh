#!/usr/bin/env bash
# Installs what the full test suite runs for real, when it is missing and this runs as root
# (Debian's packages, with apt-get): nats-server for the remote tests; headless Chromium and
# chromedriver for the observer's browser test; openssl (the TLS test makes its certificates
# with it) and iproute2 (the connection-cut test uses network namespaces) for
# tests/remote_security.rs and tests/remote_faults.rs. Each step is skipped when what it
# installs is there already, so running this again does nothing. Without them, plain
# `cargo test` skips only those tests and says how to install what is missing.
set -euo pipefail
cd "$(dirname "$0")"
bash ./ensure-nats.sh
bash ./ensure-chromium.sh

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-test-deps: installing ${missing[*]} (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; }; then
        exit 0
    fi
    echo "ensure-test-deps: apt-get could not install ${missing[*]}; the tests that need them will skip" >&2
    exit 0
fi
echo "ensure-test-deps: ${missing[*]} not found; install with: apt-get install ${missing[*]} (the tests that need them skip without)" >&2
exit 0
