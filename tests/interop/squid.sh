#!/usr/bin/env bash
# Interop: squid (Debian's package) as an authenticating HTTP proxy on 127.0.0.1, Basic auth
# through basic_ncsa_auth, CONNECT allowed to loopback only. Installs squid if it is missing,
# starts it and a Python http.server origin in the foreground under a temp dir, and stops both
# on exit.
#
# First it proves the configuration with curl: without credentials 407, wrong password 407,
# right password 200 with the file intact, both in absolute form (-x) and through a CONNECT
# tunnel (-p). Then it runs the `backhaul` CLI through the proxy on both runtimes, once the CLI
# has --proxy; until then it prints "SKIP: proxy support not wired". Prints "N passed, N
# failed" and exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-$top/target/debug/backhaul}

squid_bin=$(command -v squid || echo /usr/sbin/squid)
ncsa=/usr/lib/squid/basic_ncsa_auth
if [ ! -x "$squid_bin" ] || [ ! -x "$ncsa" ]; then
  echo "interop: installing squid"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squid >/dev/null
  squid_bin=$(command -v squid || echo /usr/sbin/squid)
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-squid.XXXXXX)
squid_pid=
helper_pids=()
cleanup() {
  for pid in "${helper_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$squid_pid" ]; then
    # Squid's auth helpers are its children: stop them by PID too (test-peers.md: they can
    # outlive squid; here PID 1 does not reap them, so they may stay as harmless zombies).
    children=$(ps -o pid= --ppid "$squid_pid" 2>/dev/null || true)
    kill -TERM "$squid_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$squid_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$squid_pid" 2>/dev/null || true
    wait "$squid_pid" 2>/dev/null || true
    for pid in $children; do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  rm -rf "$D"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

mkdir -p "$D/www" "$D/logs" "$D/out"
head -c 1048576 /dev/urandom > "$D/www/file.bin"

# The password file basic_ncsa_auth reads: htpasswd if apache2-utils is there, else openssl's
# apr1 hash (the same format).
if command -v htpasswd >/dev/null 2>&1; then
  htpasswd -bc "$D/htpasswd" bob proxypw 2>/dev/null
else
  printf 'bob:%s\n' "$(openssl passwd -apr1 proxypw)" > "$D/htpasswd"
fi
# Started as root, squid drops to the `proxy` user: it must read the password file and write
# its logs.
chmod 755 "$D"
chmod 644 "$D/htpasswd"
if [ "$(id -u)" = 0 ] && id proxy >/dev/null 2>&1; then chown proxy:proxy "$D/logs"; fi

port_proxy=$(free_port)
port_origin=$(free_port)
cat > "$D/squid.conf" <<CONF
http_port 127.0.0.1:$port_proxy
visible_hostname backhaul-interop
pid_filename $D/squid.pid
cache_log $D/logs/cache.log
access_log stdio:$D/logs/access.log
cache deny all
cache_mem 8 MB
coredump_dir $D/logs
shutdown_lifetime 1 seconds
pinger_enable off
auth_param basic program $ncsa $D/htpasswd
auth_param basic children 2
auth_param basic realm proxy-test
acl authed proxy_auth REQUIRED
acl to_loopback dst 127.0.0.0/8
# Only loopback origins, on any port, plain or through CONNECT: nothing leaves the machine.
http_access deny !to_loopback
http_access allow localhost authed
http_access deny all
CONF

"$squid_bin" -N -f "$D/squid.conf" >"$D/logs/squid.out" 2>&1 &
squid_pid=$!
python3 -m http.server "$port_origin" --bind 127.0.0.1 --directory "$D/www" >/dev/null 2>&1 &
helper_pids+=($!)
if ! wait_port "$port_proxy"; then
  echo "squid did not start:"; sed 's/^/     /' "$D/logs/squid.out" "$D/logs/cache.log" 2>/dev/null || true
  exit 1
fi
wait_port "$port_origin"

passed=0
failed=0
check() {
  local name=$1; shift
  if "$@" >"$D/last.log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$D/last.log"
  fi
}

proxy="http://127.0.0.1:$port_proxy"
origin="http://127.0.0.1:$port_origin/file.bin"

# curl's status for a request through the proxy: the origin's, or squid's 407.
status() { curl -s -o "$D/out/curl.bin" -w '%{http_code}' "$@" || true; }
# With -p (tunnel), curl reports the CONNECT's status separately.
connect_status() { curl -s -o /dev/null -w '%{http_connect}' -p "$@" || true; }

check "squid: no credentials → 407 (absolute form)" \
  test "$(status -x "$proxy" "$origin")" = 407
check "squid: wrong password → 407" \
  test "$(status -x "$proxy" -U bob:nope "$origin")" = 407
check "squid: right password → 200, file identical (absolute form)" \
  bash -c "[ \"\$(curl -s -o '$D/out/abs.bin' -w '%{http_code}' -x '$proxy' -U bob:proxypw '$origin')\" = 200 ] && cmp '$D/www/file.bin' '$D/out/abs.bin'"
check "squid: CONNECT without credentials → 407" \
  test "$(connect_status -x "$proxy" "$origin")" = 407
check "squid: CONNECT with credentials → 200, file identical through the tunnel" \
  bash -c "[ \"\$(curl -s -p -o '$D/out/tunnel.bin' -w '%{http_connect}' -x '$proxy' -U bob:proxypw '$origin')\" = 200 ] && cmp '$D/www/file.bin' '$D/out/tunnel.bin'"
check "squid: logged the authenticated user" \
  grep -q ' bob ' "$D/logs/access.log"

if "$bin" transfer --help 2>/dev/null | grep -q -- '--proxy'; then
  # The integrator adds the backhaul checks here (both runtimes): no credentials → ERROR
  # 0x80190197; right credentials → file over http (absolute form) and https (CONNECT).
  echo "SKIP: backhaul checks through squid are not written yet"
else
  echo "SKIP: proxy support not wired (the backhaul CLI has no --proxy yet)"
fi

echo "interop (squid): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
