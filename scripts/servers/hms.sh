#!/usr/bin/env bash
# Hive Metastore (Thrift, embedded Derby) on 127.0.0.1 for tests: Hive 3.1.3 by default,
# Hive 4.0.1 with HMS_HIVE_VERSION=4.
#
#   hms.sh build                         resolve deps into ~/.m2, compile, write the classpath file
#   hms.sh start DIR [PORT] [WAREHOUSE]  start in the background (pid, logs, Derby db in DIR), wait
#   hms.sh stop DIR                      SIGTERM, wait for exit (SIGKILL after 60 s)
#   hms.sh run [ARGS...]                 run in the foreground; exits on stdin EOF or SIGTERM.
#                                        ARGS: --port N --dir DIR --warehouse PATH|URI --keep-db
#                                              --template DIR --no-stdin --conf k=v
#   hms.sh classpath                     print the java classpath (builds first if needed)
#
# PORT defaults to $HMS_PORT or 9083; WAREHOUSE to DIR/warehouse. Every start gets an empty
# metastore (restored from hms/target/hive3|hive4/derby-template, which the first start writes).
# Readiness: one line on stdout, "Ready! thrift://127.0.0.1:PORT" (also in DIR/hms.out).
# Populate it with hms_populate.py.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
PROJ="$HERE/hms"
# Hive flavour: 3 (default; Hive 3.1.3, serves both the classic and the *_req Thrift calls) or 4
# (Hive 4.0.1, which dropped get_table/get_table_objects_by_name).
case "${HMS_HIVE_VERSION:-3}" in
  3 | hive3) FLAVOUR=hive3 ;;
  4 | hive4) FLAVOUR=hive4 ;;
  *) echo "HMS_HIVE_VERSION must be 3 or 4" >&2; exit 2 ;;
esac
TARGET="$PROJ/target/$FLAVOUR"
MAIN=starload.servers.HmsMain
JAVA=${JAVA:-java}
JVM_OPTS=${HMS_JVM_OPTS:--Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

cmd=${1:-}
shift || true
case "$cmd" in
  build)
    srv_mvn_build "$PROJ" "$TARGET" hms -P "$FLAVOUR"
    ;;
  classpath)
    srv_mvn_classpath "$PROJ" "$TARGET" hms -P "$FLAVOUR"
    ;;
  run)
    export HMS_TEMPLATE=${HMS_TEMPLATE:-$TARGET/derby-template}
    cp=$(srv_mvn_classpath "$PROJ" "$TARGET" hms -P "$FLAVOUR")
    cds=$(srv_jvm_cds_opts "$TARGET")
    # shellcheck disable=SC2086
    exec "$JAVA" $JVM_OPTS $cds -cp "$cp" "$MAIN" "$@"
    ;;
  start)
    dir=${1:?usage: hms.sh start DIR [PORT] [WAREHOUSE]}
    port=${2:-${HMS_PORT:-9083}}
    warehouse=${3:-${HMS_WAREHOUSE:-}}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pidfile="$dir/hms.pid"
    if srv_alive "$pidfile"; then
      srv_log "hms: already running (pid $(cat "$pidfile"))"
      cat "$dir/hms.out"
      exit 0
    fi
    if srv_port_open 127.0.0.1 "$port"; then
      srv_log "hms: 127.0.0.1:$port is already in use by another process"
      exit 1
    fi
    cp=$(srv_mvn_classpath "$PROJ" "$TARGET" hms -P "$FLAVOUR")
    cds=$(srv_jvm_cds_opts "$TARGET" "$dir")
    rm -f "$dir/hms.out"
    # shellcheck disable=SC2086
    nohup "$JAVA" $JVM_OPTS $cds -cp "$cp" "$MAIN" --port "$port" --dir "$dir" \
      --template "$TARGET/derby-template" \
      ${warehouse:+--warehouse "$warehouse"} --no-stdin \
      </dev/null >"$dir/hms.out" 2>"$dir/hms.log" &
    pid=$!
    echo "$pid" >"$pidfile"
    if ! srv_wait_line "$dir/hms.out" "^Ready! " "$pid" "${HMS_START_TIMEOUT:-180}"; then
      srv_log "hms: did not become ready; last lines of $dir/hms.log:"
      tail -30 "$dir/hms.log" >&2 || true
      srv_stop "$pidfile" hms 10
      srv_cds_finish "$dir"
      exit 1
    fi
    cat "$dir/hms.out"
    ;;
  stop)
    dir=${1:?usage: hms.sh stop DIR}
    srv_stop "$dir/hms.pid" hms 60
    srv_cds_finish "$dir"
    ;;
  *)
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
