#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft mode, no ZooKeeper, no Docker) for Sluice's tests and
# for trying Sluice locally. Needs Java 17+ and Maven 3 (the jars come from Maven Central).
#
#   scripts/kafka.sh fetch                 download Kafka's jars into .kafka/ (once; cached)
#   scripts/kafka.sh start [--keep-data] [--lease PID]
#                                          start a broker with a fresh log directory (or the previous
#                                          one with --keep-data) and wait until it answers an admin
#                                          call; already running = ok. --lease records PID as a user.
#   scripts/kafka.sh stop [--lease PID]    stop the broker this script started (by its pid); with
#                                          --lease, only once no other live process holds a lease
#                                          (a broker started without --lease is kept until a plain stop)
#   scripts/kafka.sh restart               stop, then start on the same data (--keep-data)
#   scripts/kafka.sh status                "running <bootstrap>" (exit 0) or "stopped" (exit 3)
#   scripts/kafka.sh logs                  the end of the broker's log
#
# Environment: SLUICE_KAFKA_PORT (19092; the controller listens on PORT+1), SLUICE_KAFKA_DIR (the
# instance directory: config, data, logs, pid; default .kafka/broker), SLUICE_KAFKA_HEAP (512m),
# SLUICE_KAFKA_READY_TIMEOUT (seconds, 90). Several instances can run side by side with different
# ports and directories.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONF_DIR="$ROOT/scripts/kafka"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$CONF_DIR/pom.xml")"
CACHE="${SLUICE_KAFKA_CACHE:-$ROOT/.kafka}"
LIBS="$CACHE/libs-$KAFKA_VERSION"
PORT="${SLUICE_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${SLUICE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
INSTANCE="${SLUICE_KAFKA_DIR:-$CACHE/broker}"
HEAP="${SLUICE_KAFKA_HEAP:-512m}"
READY_TIMEOUT="${SLUICE_KAFKA_READY_TIMEOUT:-90}"
BOOTSTRAP="127.0.0.1:$PORT"
PIDFILE="$INSTANCE/broker.pid"

say() { echo "[kafka.sh] $*" >&2; }
die() { say "error: $*"; exit 1; }

need() {
  command -v java >/dev/null || die "java not found: install a JDK 17+ (e.g. apt-get install openjdk-17-jdk-headless)"
  command -v mvn >/dev/null || [ -f "$LIBS/.complete" ] || die "mvn not found: install Maven 3 (e.g. apt-get install maven) to fetch Kafka's jars"
}

fetch() {
  need
  if [ -f "$LIBS/.complete" ]; then return 0; fi
  say "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
  rm -rf "$LIBS.tmp"
  mvn -B -q -Dstyle.color=never -f "$CONF_DIR/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >&2 \
    || die "mvn could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable?)"
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$LIBS/.complete"
}

# The pid of this instance's broker if it is alive (and really our kafka.Kafka), else nothing.
live_pid() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid="$(cat "$PIDFILE")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $INSTANCE/server.properties"; then
    echo "$pid"
  fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ready() {
  java "-Dlog4j.configuration=file:$CONF_DIR/log4j-tools.properties" -cp "$LIBS/*" "$CONF_DIR/KafkaReady.java" "$BOOTSTRAP" "$1" "${2:-}" >/dev/null
}

prune_leases() {
  mkdir -p "$INSTANCE/leases"
  local f
  for f in "$INSTANCE"/leases/*; do
    [ -e "$f" ] || continue
    [ "$(basename "$f")" = manual ] && continue # started by hand: kept until a plain 'stop'
    kill -0 "$(basename "$f")" 2>/dev/null || rm -f "$f"
  done
}

start() {
  local keep=0 lease=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --keep-data) keep=1 ;;
      --lease) lease="$2"; shift ;;
      *) die "start: unknown argument $1" ;;
    esac
    shift
  done
  fetch
  mkdir -p "$INSTANCE"
  exec 9>"$INSTANCE/.lock"
  flock -w 300 9 || die "another kafka.sh holds $INSTANCE/.lock"
  prune_leases
  touch "$INSTANCE/leases/${lease:-manual}"
  local pid
  pid="$(live_pid)"
  if [ -n "$pid" ]; then
    ready 30 "$pid" || die "broker pid $pid is running but does not answer at $BOOTSTRAP; see $INSTANCE/logs/server.log"
    say "already running: pid $pid at $BOOTSTRAP"
    echo "$BOOTSTRAP"
    return 0
  fi
  if port_busy "$PORT" || port_busy "$CONTROLLER_PORT"; then
    die "port $PORT or $CONTROLLER_PORT on 127.0.0.1 is taken by another process; set SLUICE_KAFKA_PORT"
  fi
  local data="$INSTANCE/data"
  if [ "$keep" = 0 ] || [ ! -f "$data/meta.properties" ]; then
    rm -rf "$data" "$INSTANCE/logs"
    mkdir -p "$data"
  fi
  mkdir -p "$INSTANCE/logs"
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$data|g" \
    "$CONF_DIR/server.properties.template" >"$INSTANCE/server.properties"
  local jvm=(java "-Xmx$HEAP" "-Xms$HEAP" -XX:+UseSerialGC -Djava.awt.headless=true
    "-Dlog4j.configuration=file:$CONF_DIR/log4j.properties" "-Dkafka.logs.dir=$INSTANCE/logs" -cp "$LIBS/*")
  if [ ! -f "$data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("${jvm[@]}" kafka.tools.StorageTool random-uuid)"
    "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$INSTANCE/server.properties" >"$INSTANCE/logs/format.log" 2>&1 \
      || { cat "$INSTANCE/logs/format.log" >&2; die "kafka.tools.StorageTool format failed"; }
  fi
  say "starting Apache Kafka $KAFKA_VERSION at $BOOTSTRAP (data: $data)"
  setsid nohup "${jvm[@]}" kafka.Kafka "$INSTANCE/server.properties" >"$INSTANCE/logs/stdout.log" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  if ! ready "$READY_TIMEOUT" "$pid"; then
    tail -n 30 "$INSTANCE/logs/server.log" "$INSTANCE/logs/stdout.log" >&2 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$PIDFILE"
    die "the broker did not become ready at $BOOTSTRAP within $READY_TIMEOUT s (logs: $INSTANCE/logs)"
  fi
  say "ready: pid $pid at $BOOTSTRAP"
  echo "$BOOTSTRAP"
}

stop() {
  local lease=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --lease) lease="$2"; shift ;;
      *) die "stop: unknown argument $1" ;;
    esac
    shift
  done
  mkdir -p "$INSTANCE"
  exec 9>"$INSTANCE/.lock"
  flock -w 300 9 || die "another kafka.sh holds $INSTANCE/.lock"
  if [ -n "$lease" ]; then
    rm -f "$INSTANCE/leases/$lease"
    prune_leases
    if [ -n "$(ls -A "$INSTANCE/leases")" ]; then
      say "still in use by $(ls "$INSTANCE/leases" | tr '\n' ' '); not stopping"
      return 0
    fi
  fi
  [ -n "$lease" ] || rm -rf "$INSTANCE/leases"
  local pid
  pid="$(live_pid)"
  if [ -z "$pid" ]; then
    rm -f "$PIDFILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for i in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "pid $pid did not stop in 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  say "stopped pid $pid"
}

case "${1:-}" in
  fetch) fetch ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  restart) stop; start --keep-data ;;
  status)
    pid="$(live_pid)"
    if [ -n "$pid" ]; then echo "running $BOOTSTRAP pid $pid"; else echo "stopped"; exit 3; fi ;;
  logs) tail -n "${2:-100}" "$INSTANCE/logs/server.log" ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
