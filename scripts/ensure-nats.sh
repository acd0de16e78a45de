#!/usr/bin/env bash
# Makes sure nats-server is installed, for the remote tests (tests/remote_*.rs) and the
# remote benchmark. Installs Debian's package with apt-get when it is missing and this runs
# as root; otherwise says how to install it. Exits 0 either way: without the server those
# tests skip (and say so), they do not fail.
set -euo pipefail

if command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-nats: installing nats-server (Debian package)" >&2
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -q nats-server >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q nats-server >/dev/null 2>&1; }; then
        echo "ensure-nats: installed $(/usr/sbin/nats-server --version 2>/dev/null || echo nats-server)" >&2
        exit 0
    fi
    echo "ensure-nats: apt-get could not install nats-server; the remote tests will skip" >&2
    exit 0
fi
echo "ensure-nats: nats-server not found; install it with: apt-get install nats-server (the remote tests skip without it)" >&2
exit 0
