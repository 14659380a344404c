#!/usr/bin/env bash
# Installs the Debian 12 packages glassbox builds, tests and trains with.
set -euo pipefail
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libcli11-dev nlohmann-json3-dev libcpp-httplib-dev libutf8proc-dev libpcre2-dev libssl-dev libsqlite3-dev libpq-dev \
  postgresql chromium \
  clang-14 libclang-rt-14-dev clang-format \
  python3 python3-numpy >/dev/null
