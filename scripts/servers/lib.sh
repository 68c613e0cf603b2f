# Shared helpers for the test-server launchers (sourced, not executed).
# shellcheck shell=bash

srv_log() { echo "[servers] $*" >&2; }

# srv_alive PIDFILE -> 0 if the pid in PIDFILE is a live process
srv_alive() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# srv_wait_line FILE PATTERN PID TIMEOUT_S -> 0 when FILE contains PATTERN; 1 if PID died or timeout
srv_wait_line() {
  local file=$1 pattern=$2 pid=$3 timeout=$4 i=0
  local max=$((timeout * 10))
  while [ $i -lt $max ]; do
    if [ -f "$file" ] && grep -q -- "$pattern" "$file"; then return 0; fi
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

# srv_port_open HOST PORT -> 0 if a TCP connect succeeds
srv_port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# srv_port_free_wait HOST PORT TIMEOUT_S -> 0 once nothing listens on HOST:PORT
srv_port_free_wait() {
  local host=$1 port=$2 timeout=$3 i=0
  while srv_port_open "$host" "$port"; do
    [ $i -ge $((timeout * 10)) ] && return 1
    sleep 0.1
    i=$((i + 1))
  done
  return 0
}

# srv_stop PIDFILE NAME [TIMEOUT_S=30] -> SIGTERM, wait for exit, SIGKILL after TIMEOUT_S
# (sets SRV_KILLED=1 when it had to SIGKILL)
SRV_KILLED=0
srv_stop() {
  local pidfile=$1 name=$2 timeout=${3:-30} pid i=0
  if ! srv_alive "$pidfile"; then
    rm -f "$pidfile"
    srv_log "$name: not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ $i -ge $((timeout * 10)) ]; then
      srv_log "$name: pid $pid still alive after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      SRV_KILLED=1
      sleep 0.2
      break
    fi
    sleep 0.1
    i=$((i + 1))
  done
  rm -f "$pidfile"
  srv_log "$name: stopped (pid $pid)"
}

# The Maven projects (minidfs/, hms/) build, into a TARGET dir (minidfs/target, hms/target/hive3,
# hms/target/hive4), their own jar and classpath.txt (the dependency jars in ~/.m2). Launchers run
#   java -cp TARGET/X.jar:$(cat TARGET/classpath.txt) MAIN
# with an AppCDS archive (TARGET/X.jsa): the first daemon start writes it when it stops, later runs
# map it and start ~1.5 s faster. A stale archive (rebuilt jar, other JVM) is ignored by the JVM;
# a rebuild deletes it.

# srv_mvn_jar TARGET -> path of the project's own jar
srv_mvn_jar() {
  local j
  for j in "$1"/*.jar; do
    [ -f "$j" ] && { echo "$j"; return 0; }
  done
  return 1
}

# srv_mvn_needs_build PROJ TARGET -> 0 if the jar or classpath.txt is missing or stale
srv_mvn_needs_build() {
  local proj=$1 target=$2 cpfile="$2/classpath.txt" jar f
  [ -s "$cpfile" ] || return 0
  jar=$(srv_mvn_jar "$target") || return 0
  [ "$proj/pom.xml" -nt "$cpfile" ] && return 0
  [ -n "$(find "$proj/src" -newer "$jar" -type f 2>/dev/null | head -1)" ] && return 0
  # every dependency jar still present in ~/.m2?
  while IFS= read -r f; do [ -e "$f" ] || return 0; done < <(tr ':' '\n' <"$cpfile")
  return 1
}

# srv_mvn_build PROJ TARGET NAME [MVN_ARGS...] -> mvn package (downloads deps into ~/.m2)
srv_mvn_build() {
  local proj=$1 target=$2 name=$3
  shift 3
  command -v mvn >/dev/null || { srv_log "$name: mvn not found"; return 1; }
  srv_log "$name: building $proj $* (the first run downloads dependencies into ~/.m2)"
  rm -rf "$target"/*.jsa "$target/derby-template"
  (set -o pipefail && cd "$proj" && mvn -B -q -Dstyle.color=never "$@" package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2) || {
    srv_log "$name: maven build failed"
    return 1
  }
  touch "$target/classpath.txt" # build-classpath leaves an unchanged file untouched
}

# srv_mvn_classpath PROJ TARGET NAME [MVN_ARGS...] -> prints the classpath, building if needed
srv_mvn_classpath() {
  if srv_mvn_needs_build "$1" "$2"; then
    srv_mvn_build "$@" || return 1
  fi
  echo "$(srv_mvn_jar "$2"):$(cat "$2/classpath.txt")"
}

# srv_jvm_cds_opts TARGET [DUMP_DIR] -> JVM options for the AppCDS archive TARGET/X.jsa: use it if
# present; else, when DUMP_DIR is given (daemon starts), have the JVM write one into DUMP_DIR at
# exit, which srv_cds_finish moves into place after the process ended (never a half-written file).
# JVM log output goes to stderr only: stdout carries nothing but the "Ready!" line.
srv_jvm_cds_opts() {
  local jar jsa dump=${2:-}
  jar=$(srv_mvn_jar "$1") || return 0
  jsa="${jar%.jar}.jsa"
  printf '%s ' -Xlog:disable -Xlog:all=warning:stderr -Xlog:cds=error:stderr -Xlog:cds+dynamic=error:stderr
  if [ "${SERVERS_NO_CDS:-0}" = 1 ]; then
    return 0
  elif [ -s "$jsa" ]; then
    printf '%s ' "-XX:SharedArchiveFile=$jsa"
  elif [ -n "$dump" ]; then
    rm -f "$dump/cds.jsa.tmp"
    echo "$jsa" >"$dump/cds.target"
    printf '%s ' "-XX:ArchiveClassesAtExit=$dump/cds.jsa.tmp"
  fi
}

# srv_cds_finish DIR -> after the JVM exited, move a freshly written archive into place
srv_cds_finish() {
  local dir=$1 target
  [ -f "$dir/cds.target" ] || return 0
  target=$(cat "$dir/cds.target")
  # a JVM killed while writing leaves a partial archive: drop it
  if [ "$SRV_KILLED" = 0 ] && [ -s "$dir/cds.jsa.tmp" ] && [ ! -s "$target" ] && [ -d "$(dirname "$target")" ]; then
    if ! { cp "$dir/cds.jsa.tmp" "$target.tmp.$$" && mv -f "$target.tmp.$$" "$target"; }; then
      rm -f "$target.tmp.$$"
    fi
  fi
  rm -f "$dir/cds.jsa.tmp" "$dir/cds.target"
}
