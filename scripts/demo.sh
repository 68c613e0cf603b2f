#!/usr/bin/env bash
# The demo: build starload, write a small Hive-partitioned Parquet dataset,
# start the bundled StarRocks simulator, load the dataset, show what arrived,
# and show that a re-run loads nothing twice. Needs only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/starload-target}"

echo "== building starload (first build takes several minutes)"
cargo build --quiet --bin starload
BIN="$CARGO_TARGET_DIR/debug/starload"

DEMO="${STARLOAD_DEMO_DIR:-$(mktemp -d)}"
FE_PORT="${DEMO_FE_PORT:-18030}"
BE_PORT="${DEMO_BE_PORT:-18040}"
MYSQL_PORT="${DEMO_MYSQL_PORT:-19030}"
# The simulator's password and the loader's come from the environment, never argv.
export STARLOAD_SIM_PASSWORD="demo-password"
export STARROCKS_PASSWORD="demo-password"

echo "== writing the demo dataset to $DEMO"
"$BIN" demo-data --out "$DEMO" --rows 20000

echo "== starting the StarRocks simulator"
"$BIN" sim --tables "$DEMO/tables.toml" --fe-port "$FE_PORT" --be-port "$BE_PORT" --mysql-port "$MYSQL_PORT" 2>"$DEMO/sim.log" &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true; wait "$SIM_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  grep -q "simulator ready" "$DEMO/sim.log" 2>/dev/null && break
  kill -0 "$SIM_PID" 2>/dev/null || { cat "$DEMO/sim.log"; exit 1; }
  sleep 0.1
done
cat "$DEMO/sim.log"

ARGS=(--source "$DEMO/data" --table demo.events --fe "http://127.0.0.1:$FE_PORT"
      --mysql "127.0.0.1:$MYSQL_PORT" --user root --state-dir "$DEMO/state" --chunk-bytes 256KiB)

echo; echo "== starload plan (sends nothing)"
"$BIN" plan "${ARGS[@]}" | head -40

echo; echo "== starload load"
"$BIN" load "${ARGS[@]}"

echo; echo "== what arrived (SELECT over the simulator's MySQL endpoint)"
"$BIN" sql --mysql "127.0.0.1:$MYSQL_PORT" \
  "SELECT dt, country, COUNT(*) AS n, SUM(amount) AS total FROM demo.events GROUP BY dt, country ORDER BY dt, country"
"$BIN" sql --mysql "127.0.0.1:$MYSQL_PORT" \
  "SELECT event_id, dt, country, user_name, amount, ts, tags, note FROM demo.events ORDER BY event_id LIMIT 5"

echo; echo "== the same job again: every chunk is already committed, nothing is sent"
"$BIN" load "${ARGS[@]}"
"$BIN" sql --mysql "127.0.0.1:$MYSQL_PORT" "SELECT COUNT(*) FROM demo.events"
"$BIN" status --state-dir "$DEMO/state" | head -3
