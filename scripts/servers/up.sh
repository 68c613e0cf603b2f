#!/usr/bin/env bash
# Start the test servers (SeaweedFS S3, MiniDFS, Hive Metastore) on 127.0.0.1 and write an env
# file for the tests. Idempotent: a server that is already running is left alone.
#
#   scripts/servers/up.sh [s3] [hdfs] [hms]     (no argument = all three)
#   . "${STARLOAD_SERVERS_DIR:-/tmp/starload-servers}/servers.env"
#   scripts/servers/down.sh
#
# State dir: $STARLOAD_SERVERS_DIR (default /tmp/starload-servers), one subdir per server with its
# pid file and logs. Ports: SEAWEEDFS_S3_PORT (8333), MINIDFS_PORT (9000), HMS_PORT (9083).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
STATE=${STARLOAD_SERVERS_DIR:-/tmp/starload-servers}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
S3_PORT=${SEAWEEDFS_S3_PORT:-8333}
HDFS_PORT=${MINIDFS_PORT:-9000}
HMS_PORT=${HMS_PORT:-9083}
export SEAWEEDFS_ACCESS_KEY=${SEAWEEDFS_ACCESS_KEY:-testkey}
export SEAWEEDFS_SECRET_KEY=${SEAWEEDFS_SECRET_KEY:-testsecret}

want_s3=0 want_hdfs=0 want_hms=0
[ $# -eq 0 ] && set -- s3 hdfs hms
for a in "$@"; do
  case "$a" in
    s3 | seaweedfs) want_s3=1 ;;
    hdfs | minidfs) want_hdfs=1 ;;
    hms | hive) want_hms=1 ;;
    *) echo "usage: up.sh [s3] [hdfs] [hms]" >&2; exit 2 ;;
  esac
done

t0=$SECONDS
# Builds first and one at a time (concurrent Maven runs sharing ~/.m2 can trip over each other).
[ $want_hdfs = 1 ] && "$HERE/minidfs.sh" classpath >/dev/null
[ $want_hms = 1 ] && "$HERE/hms.sh" classpath >/dev/null
[ $want_s3 = 1 ] && "$HERE/seaweedfs.sh" install >/dev/null

# Then start them side by side.
pids=()
names=()
if [ $want_s3 = 1 ]; then
  "$HERE/seaweedfs.sh" start "$STATE/seaweedfs" &
  pids+=($!); names+=(seaweedfs)
fi
if [ $want_hdfs = 1 ]; then
  MINIDFS_PORT=$HDFS_PORT "$HERE/minidfs.sh" start "$STATE/minidfs" &
  pids+=($!); names+=(minidfs)
fi
if [ $want_hms = 1 ]; then
  HMS_PORT=$HMS_PORT "$HERE/hms.sh" start "$STATE/hms" &
  pids+=($!); names+=(hms)
fi
failed=()
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed+=("${names[$i]}")
done

env_file="$STATE/servers.env"
{
  echo "# written by scripts/servers/up.sh; source it: . $env_file"
  echo "export STARLOAD_SERVERS_DIR=$STATE"
  if srv_alive "$STATE/seaweedfs/weed.pid"; then
    echo "export STARLOAD_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
    echo "export STARLOAD_TEST_S3_REGION=us-east-1"
    echo "export STARLOAD_TEST_S3_ACCESS_KEY=$SEAWEEDFS_ACCESS_KEY"
    echo "export STARLOAD_TEST_S3_SECRET_KEY=$SEAWEEDFS_SECRET_KEY"
    echo "export AWS_ACCESS_KEY_ID=$SEAWEEDFS_ACCESS_KEY"
    echo "export AWS_SECRET_ACCESS_KEY=$SEAWEEDFS_SECRET_KEY"
    echo "export AWS_REGION=us-east-1"
    echo "export AWS_DEFAULT_REGION=us-east-1"
  fi
  if srv_alive "$STATE/minidfs/minidfs.pid"; then
    echo "export STARLOAD_TEST_HDFS=hdfs://127.0.0.1:$HDFS_PORT"
  fi
  if srv_alive "$STATE/hms/hms.pid"; then
    echo "export STARLOAD_TEST_HMS=thrift://127.0.0.1:$HMS_PORT"
    echo "export STARLOAD_TEST_HMS_WAREHOUSE=file://$STATE/hms/warehouse"
  fi
} >"$env_file.tmp"
mv "$env_file.tmp" "$env_file"

if [ ${#failed[@]} -gt 0 ]; then
  srv_log "FAILED to start: ${failed[*]} (logs under $STATE; stop the rest with down.sh)"
  exit 1
fi
srv_log "all up in $((SECONDS - t0)) s; env: $env_file"
cat "$env_file"
