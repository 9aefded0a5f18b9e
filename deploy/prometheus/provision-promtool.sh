#!/usr/bin/env bash
# Installs Debian's prometheus package for `promtool test rules` (the alert-rule tests) when
# it can (root, apt). The tests never start Prometheus itself. Elsewhere the rule tests
# skip, except under CI=true where they fail.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing promtool (Debian's prometheus package) for the alert-rule tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
    pkill -x prometheus >/dev/null 2>&1 || true
else
    echo "promtool is missing and cannot be installed here: the alert-rule tests will skip (and fail under CI=true)"
fi
