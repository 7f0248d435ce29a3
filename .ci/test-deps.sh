#!/usr/bin/env bash
# Installs what the client-compatibility tests in cmd/gregor need on a fresh
# machine: kcat (Debian package), kafkajs (npm, pinned by
# cmd/gregor/testdata/kafkajs/package-lock.json) and the Java test jar (a
# JDK and Maven from Debian; kafka-clients, kafka-streams, Kafka Connect's
# connect-runtime, connect-file, connect-json and connect-mirror (MirrorMaker
# 2) pinned by cmd/gregor/testdata/java/pom.xml, fetched from Maven Central,
# shaded into one jar whose subcommands are the client checks, the Streams
# app, a Connect worker and MirrorMaker 2). Idempotent;
# prints what it does. Runs as root (apt-get directly) or through sudo when
# not root.
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

jv=cmd/gregor/testdata/java
jar=$jv/target/gregor-java-client.jar
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
	echo "test-deps: installing openjdk-17-jdk-headless and maven (Debian packages)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven
fi
# Rebuild only when the jar is missing or older than the pom or a source.
if [ -f "$jar" ] && [ -z "$(find "$jv/pom.xml" "$jv/src" -type f -newer "$jar" | head -n1)" ]; then
	echo "test-deps: $jar is up to date"
else
	echo "test-deps: mvn -q -B package in $jv ($(java -version 2>&1 | head -n1))"
	start=$SECONDS
	(cd "$jv" && mvn -q -B package)
	echo "test-deps: built $jar in $((SECONDS - start)) s"
fi

# The Python clients (confluent-kafka, which bundles librdkafka), pinned by
# cmd/gregor/testdata/python/requirements.txt, in a virtual environment
# there; reinstalled only when the requirements changed.
py=cmd/gregor/testdata/python
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
	echo "test-deps: installing python3-venv (Debian package)"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
if [ -x "$py/.venv/bin/python" ] && cmp -s "$py/requirements.txt" "$py/.venv/requirements.installed"; then
	echo "test-deps: Python clients present in $py/.venv"
else
	echo "test-deps: pip install -r $py/requirements.txt into $py/.venv ($(python3 --version))"
	rm -rf "$py/.venv"
	python3 -m venv "$py/.venv"
	"$py/.venv/bin/pip" install -q --disable-pip-version-check -r "$py/requirements.txt"
	cp "$py/requirements.txt" "$py/.venv/requirements.installed"
fi
echo "test-deps: confluent-kafka $("$py/.venv/bin/python" -c 'import confluent_kafka as c; print(c.version()[0], "librdkafka", c.libversion()[0])')"
