#!/usr/bin/env bash
# Installs what the full test suite runs for real, when it is missing and this runs as root
# (Debian's packages, with apt-get): nats-server for the remote tests, headless Chromium and
# chromedriver for the observer's browser test. Each step is skipped when what it installs is
# there already, so running this again does nothing. Without them, plain `cargo test` skips
# only those tests and says how to install what is missing.
set -euo pipefail
cd "$(dirname "$0")"
bash ./ensure-nats.sh
bash ./ensure-chromium.sh
