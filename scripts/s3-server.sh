#!/usr/bin/env bash
# A real S3-compatible server on loopback for tests and development: OpenStack Swift with its s3api
# middleware (SigV4, presigned URLs, multipart), from Debian's packages, one node, one replica.
#
#   scripts/s3-server.sh start    install what is missing, start it (or find it running), print the URL
#   scripts/s3-server.sh url      print the PERSISTENCE_S3_URL for the running server
#   scripts/s3-server.sh status   exit 0 when it answers
#   scripts/s3-server.sh stop     stop the processes this script started (add --purge to drop the data)
#
# Only the URL goes to stdout, so `export TEST_S3_URL=$(scripts/s3-server.sh start)` works; progress goes
# to stderr. Everything lives under S3_SERVER_DIR (default /tmp/persistence-s3): its own swift_dir, rings,
# device folder, logs and pid files; /etc/swift is never touched.
# Ports: S3_SERVER_PORT (proxy, default 8080); the object, container and account servers take
# S3_SERVER_BACKEND_PORT (default 6200) and the two after it; memcached S3_SERVER_MEMCACHED_PORT (11311).
set -euo pipefail

dir=${S3_SERVER_DIR:-/tmp/persistence-s3}
port=${S3_SERVER_PORT:-8080}
backend=${S3_SERVER_BACKEND_PORT:-6200}
memcached_port=${S3_SERVER_MEMCACHED_PORT:-11311}
object_port=$backend
container_port=$((backend + 1))
account_port=$((backend + 2))
# tempauth's test account; the bucket is created by the client on first use.
access_key="test:tester"
secret_key="testing"
bucket=${S3_SERVER_BUCKET:-persistence}

conf="$dir/etc"
run="$dir/run"
logs="$dir/log"
servers=(account container object proxy)

say() { printf 's3-server: %s\n' "$*" >&2; }

url() {
  # user info percent-encoded: the ':' in the tempauth user name becomes %3A
  printf 'http://%s:%s@127.0.0.1:%s/%s?region=us-east-1\n' "${access_key//:/%3A}" "$secret_key" "$port" "$bucket"
}

# A server of ours is alive when its pid file names a live process whose command line is the one this
# script gave it (its config file, or memcached's port): a recycled pid is never taken for ours.
alive() {
  local pid mark
  pid=$(cat "$run/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  if [ "$1" = memcached ]; then mark="$memcached_port"; else mark="$conf/$1-server.conf"; fi
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$mark"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

answers() {
  [ "$(curl -fsS --max-time 2 "http://127.0.0.1:$port/healthcheck" 2>/dev/null)" = "OK" ] || return 1
  # s3api in the pipeline: a request with a bogus S3 signature gets S3's XML error, not Swift's reply
  curl -sS --max-time 2 -H "Authorization: AWS probe:probe" "http://127.0.0.1:$port/" 2>/dev/null | grep -q "<Error><Code>"
}

up() {
  for s in "${servers[@]}" memcached; do alive "$s" || return 1; done
  answers
}

install_missing() {
  local missing=()
  command -v swift-proxy-server >/dev/null 2>&1 || missing+=(swift swift-proxy)
  command -v swift-account-server >/dev/null 2>&1 || missing+=(swift-account)
  command -v swift-container-server >/dev/null 2>&1 || missing+=(swift-container)
  command -v swift-object-server >/dev/null 2>&1 || missing+=(swift-object)
  command -v memcached >/dev/null 2>&1 || missing+=(memcached)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "missing ${missing[*]} and cannot install them (needs root and apt-get)"
    exit 1
  fi
  say "installing ${missing[*]}"
  # Installing must not start the packages' own services (memcached would take its default port):
  # Debian's policy-rc.d hook refuses them for the duration of the install.
  local own_policy=0 status=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local packages=(swift swift-proxy swift-account swift-container swift-object memcached)
  {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}" ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"; }
  } >&2 || status=$?
  if [ $own_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  return $status
}

write_config() {
  mkdir -p "$conf" "$run" "$logs" "$dir/srv/d1"
  local hash
  hash=$(cat "$conf/hash" 2>/dev/null || od -An -tx1 -N16 /dev/urandom | tr -d ' \n' | tee "$conf/hash")
  cat >"$conf/swift.conf" <<EOF
[swift-hash]
swift_hash_path_prefix = ${hash:0:16}
swift_hash_path_suffix = ${hash:16:16}

[storage-policy:0]
name = Policy-0
default = yes
EOF
  local common="[DEFAULT]
swift_dir = $conf
devices = $dir/srv
mount_check = false
disable_fallocate = true
bind_ip = 127.0.0.1
workers = 0
user = root
log_name = %s
"
  for s in account container object; do
    local p
    p="${s}_port"
    # shellcheck disable=SC2059
    printf "$common" "$s" >"$conf/$s-server.conf"
    cat >>"$conf/$s-server.conf" <<EOF
bind_port = ${!p}

[pipeline:main]
pipeline = $s-server

[app:$s-server]
use = egg:swift#$s

EOF
  done
  # shellcheck disable=SC2059
  printf "$common" proxy-server >"$conf/proxy-server.conf"
  cat >>"$conf/proxy-server.conf" <<EOF
bind_port = $port

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcached_port

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:bulk]
use = egg:swift#bulk

[filter:s3api]
use = egg:swift#s3api
location = us-east-1
s3_acl = false

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
EOF
  for s in account container object; do
    local p
    p="${s}_port"
    if [ ! -f "$conf/$s.ring.gz" ] || [ "$(cat "$conf/$s.ring.port" 2>/dev/null)" != "${!p}" ]; then
      rm -f "$conf/$s.builder" "$conf/$s.ring.gz"
      (
        cd "$conf"
        swift-ring-builder "$s.builder" create 8 1 1 >/dev/null
        swift-ring-builder "$s.builder" add "r1z1-127.0.0.1:${!p}/d1" 100 >/dev/null
        swift-ring-builder "$s.builder" rebalance >/dev/null || [ -f "$s.ring.gz" ]
      )
      echo "${!p}" >"$conf/$s.ring.port"
    fi
  done
}

start_server() {
  local name=$1
  shift
  alive "$name" && return 0
  # In a session of its own, the server outlives this script and whatever ran it; it writes its own
  # pid before it becomes the server (exec), so the pid file names the server itself.
  rm -f "$run/$name.pid"
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run/$name.pid" "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  for _ in $(seq 1 40); do [ -s "$run/$name.pid" ] && break; sleep 0.05; done
}

start() {
  if up; then
    say "already up on 127.0.0.1:$port"
    url
    return 0
  fi
  local ours=""
  for s in "${servers[@]}" memcached; do alive "$s" && ours=yes; done
  for p in "$port" "$object_port" "$container_port" "$account_port" "$memcached_port"; do
    if [ -z "$ours" ] && port_open "$p"; then
      say "port $p is taken by another process; choose other ports (S3_SERVER_PORT, S3_SERVER_BACKEND_PORT, S3_SERVER_MEMCACHED_PORT)"
      exit 1
    fi
  done
  local began=$SECONDS
  install_missing
  write_config
  start_server memcached memcached -l 127.0.0.1 -p "$memcached_port" -U 0 -m 64 -u root
  for s in account container object; do
    start_server "$s" "swift-$s-server" "$conf/$s-server.conf" --verbose
  done
  start_server proxy swift-proxy-server "$conf/proxy-server.conf" --verbose
  for _ in $(seq 1 120); do
    if up && port_open "$object_port" && port_open "$container_port" && port_open "$account_port"; then
      say "up on 127.0.0.1:$port in $((SECONDS - began)) s (data and logs in $dir)"
      url
      return 0
    fi
    for s in "${servers[@]}" memcached; do
      if ! alive "$s"; then
        say "$s exited; the end of $logs/$s.log:"
        tail -n 20 "$logs/$s.log" >&2 || true
        stop
        exit 1
      fi
    done
    sleep 0.25
  done
  say "not answering after 30 s; see $logs"
  stop
  exit 1
}

stop() {
  for s in proxy object container account memcached; do
    if alive "$s"; then
      kill "$(cat "$run/$s.pid")" 2>/dev/null || true
    fi
  done
  for s in proxy object container account memcached; do
    if [ -f "$run/$s.pid" ]; then
      local pid
      pid=$(cat "$run/$s.pid")
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$run/$s.pid"
    fi
  done
  say "stopped"
}

case "${1:-start}" in
  start) start ;;
  url) url ;;
  status) up ;;
  stop)
    stop
    if [ "${2:-}" = "--purge" ]; then rm -rf "$dir"; fi
    ;;
  *)
    echo "usage: $0 start|url|status|stop [--purge]" >&2
    exit 2
    ;;
esac
