#!/usr/bin/env bash
# MiniDFSCluster (1 NameNode + 1 DataNode, permissions off) on 127.0.0.1 for tests.
#
#   minidfs.sh build                 resolve deps into ~/.m2, compile, write target/classpath.txt
#   minidfs.sh start DIR [PORT]      start in the background (pid, logs, data in DIR), wait until ready
#   minidfs.sh stop DIR              SIGTERM, wait for exit (SIGKILL after 60 s)
#   minidfs.sh run [ARGS...]         run in the foreground; exits on stdin EOF or SIGTERM.
#                                    ARGS: --port N --dir DIR --http-port N --no-stdin --conf k=v
#   minidfs.sh classpath             print the java classpath (builds first if needed)
#
# PORT defaults to $MINIDFS_PORT or 9000. The data dir is formatted on every start.
# Readiness: one line on stdout, "Ready! hdfs://127.0.0.1:PORT" (also in DIR/minidfs.out).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
PROJ="$HERE/minidfs"
TARGET="$PROJ/target"
MAIN=starload.servers.MiniDfsMain
JAVA=${JAVA:-java}
JVM_OPTS=${MINIDFS_JVM_OPTS:--Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1}

cmd=${1:-}
shift || true
case "$cmd" in
  build)
    srv_mvn_build "$PROJ" "$TARGET" minidfs
    ;;
  classpath)
    srv_mvn_classpath "$PROJ" "$TARGET" minidfs
    ;;
  run)
    cp=$(srv_mvn_classpath "$PROJ" "$TARGET" minidfs)
    cds=$(srv_jvm_cds_opts "$TARGET")
    # shellcheck disable=SC2086
    exec "$JAVA" $JVM_OPTS $cds -cp "$cp" "$MAIN" "$@"
    ;;
  start)
    dir=${1:?usage: minidfs.sh start DIR [PORT]}
    port=${2:-${MINIDFS_PORT:-9000}}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pidfile="$dir/minidfs.pid"
    if srv_alive "$pidfile"; then
      srv_log "minidfs: already running (pid $(cat "$pidfile"))"
      cat "$dir/minidfs.out"
      exit 0
    fi
    if srv_port_open 127.0.0.1 "$port"; then
      srv_log "minidfs: 127.0.0.1:$port is already in use by another process"
      exit 1
    fi
    cp=$(srv_mvn_classpath "$PROJ" "$TARGET" minidfs)
    cds=$(srv_jvm_cds_opts "$TARGET" "$dir")
    rm -f "$dir/minidfs.out"
    # shellcheck disable=SC2086
    nohup "$JAVA" $JVM_OPTS $cds -cp "$cp" "$MAIN" --port "$port" --dir "$dir/data" --no-stdin \
      </dev/null >"$dir/minidfs.out" 2>"$dir/minidfs.log" &
    pid=$!
    echo "$pid" >"$pidfile"
    if ! srv_wait_line "$dir/minidfs.out" "^Ready! " "$pid" "${MINIDFS_START_TIMEOUT:-180}"; then
      srv_log "minidfs: did not become ready; last lines of $dir/minidfs.log:"
      tail -30 "$dir/minidfs.log" >&2 || true
      srv_stop "$pidfile" minidfs 10
      srv_cds_finish "$dir"
      exit 1
    fi
    cat "$dir/minidfs.out"
    ;;
  stop)
    dir=${1:?usage: minidfs.sh stop DIR}
    srv_stop "$dir/minidfs.pid" minidfs 60
    srv_cds_finish "$dir"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
