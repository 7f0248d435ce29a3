#!/usr/bin/env bash
# Installs what the client-compatibility tests in cmd/gregor need on a fresh
# machine: kcat (Debian package) and kafkajs (npm, pinned by
# cmd/gregor/testdata/kafkajs/package-lock.json). Idempotent; prints what it
# does. Runs as root (apt-get directly) or through sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "test-deps: need root (or sudo) to run: $*" >&2
		return 1
	fi
}

if command -v kcat >/dev/null 2>&1; then
	echo "test-deps: kcat present: $(kcat -V 2>&1 | head -n1)"
else
	echo "test-deps: installing kcat (Debian package)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kcat
	echo "test-deps: kcat installed: $(kcat -V 2>&1 | head -n1)"
fi

js=cmd/gregor/testdata/kafkajs
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "test-deps: installing nodejs and npm (Debian packages)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
want=$(node -p "require('./$js/package-lock.json').packages['node_modules/kafkajs'].version")
have=$(node -p "try { require('./$js/node_modules/kafkajs/package.json').version } catch (e) { '' }")
if [ "$want" = "$have" ]; then
	echo "test-deps: kafkajs present in $js/node_modules"
else
	echo "test-deps: npm ci in $js (node $(node --version))"
	(cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "test-deps: kafkajs $(node -p "require('./$js/node_modules/kafkajs/package.json').version")"
