#!/usr/bin/env bash
# Installs Debian's clickhouse-server for the native-protocol tests when it can (root, apt).
# The tests start their own server on loopback with a temporary config; the system
# service the package may start is stopped. Elsewhere the tests skip, except under CI=true.
set -euo pipefail
if command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || [ -x /usr/bin/clickhouse-server ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing clickhouse-server (Debian) for the native-protocol tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clickhouse-server >/dev/null
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now clickhouse-server >/dev/null 2>&1 || true; fi
else
    echo "clickhouse-server is missing and cannot be installed here: native-protocol tests will skip (and fail under CI=true)"
fi
