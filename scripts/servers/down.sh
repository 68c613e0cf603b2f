#!/usr/bin/env bash
# Stop the test servers started by up.sh (SIGTERM by pid, wait for each to exit).
#   scripts/servers/down.sh [s3] [hdfs] [hms]     (no argument = all three)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${STARLOAD_SERVERS_DIR:-/tmp/starload-servers}
[ -d "$STATE" ] || { echo "[servers] nothing to stop ($STATE does not exist)" >&2; exit 0; }
[ $# -eq 0 ] && set -- s3 hdfs hms
pids=()
for a in "$@"; do
  case "$a" in
    s3 | seaweedfs) "$HERE/seaweedfs.sh" stop "$STATE/seaweedfs" & pids+=($!) ;;
    hdfs | minidfs) "$HERE/minidfs.sh" stop "$STATE/minidfs" & pids+=($!) ;;
    hms | hive) "$HERE/hms.sh" stop "$STATE/hms" & pids+=($!) ;;
    *) echo "usage: down.sh [s3] [hdfs] [hms]" >&2; exit 2 ;;
  esac
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $# -eq 3 ] && rm -f "$STATE/servers.env"
exit $rc
