#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the Python test tools
# into a virtualenv, generates the Parquet corpus (pyarrow, pyarrow INT96,
# pyarrow with every codec and encoding, polars, DuckDB), checks formatting and lints, runs every test, and stops whatever
# it started. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starload-target}"
CACHE="${STARLOAD_CACHE:-$HOME/.cache/starload}"
mkdir -p "$CACHE"

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "python test tools"
VENV="$CACHE/venv"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
REQ_HASH=$(sha256sum scripts/requirements-test.txt | cut -c1-16)
if [ ! -f "$VENV/.req-$REQ_HASH" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
  touch "$VENV/.req-$REQ_HASH"
fi
export STARLOAD_PYTHON="$VENV/bin/python"

step "parquet corpus"
GEN_HASH=$(cat scripts/gen_corpus.py scripts/requirements-test.txt | sha256sum | cut -c1-16)
export STARLOAD_CORPUS="$CACHE/corpus-$GEN_HASH"
if [ ! -f "$STARLOAD_CORPUS/.done" ]; then
  rm -rf "$STARLOAD_CORPUS"
  "$STARLOAD_PYTHON" scripts/gen_corpus.py --out "$STARLOAD_CORPUS" --seed 42 --rows 3000
  "$STARLOAD_PYTHON" scripts/gen_corpus.py --verify "$STARLOAD_CORPUS"
  touch "$STARLOAD_CORPUS/.done"
fi

step "test servers (S3, HDFS, Hive Metastore)"
export STARLOAD_SERVERS_DIR="${STARLOAD_SERVERS_DIR:-$CACHE/servers}"
# The servers are started here and stopped when the script exits.
scripts/servers/up.sh
trap 'scripts/servers/down.sh >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
. "$STARLOAD_SERVERS_DIR/servers.env"
export STARLOAD_REQUIRE_SERVERS=1

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --all-targets --quiet -- -D warnings

step "tests"
# Criterion benches own their argv (no --test-threads), so they run apart:
# in test mode each benchmark body executes once, which keeps them compiling
# and correct without timing anything.
cargo test --lib --bins --tests --examples -- --test-threads "${STARLOAD_TEST_THREADS:-2}"
cargo test --benches

step "airflow operator (real Apache Airflow from PyPI, against the simulator)"
STARLOAD_BIN="$CARGO_TARGET_DIR/debug/starload" airflow/run_tests.sh -q

step "done"
cd "$ROOT"
