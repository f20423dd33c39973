#!/usr/bin/env bash
# Interop: squid (Debian's package) as an authenticating HTTP proxy on 127.0.0.1, Basic auth
# through basic_ncsa_auth, CONNECT allowed to loopback only. Installs squid if it is missing,
# starts it and a Python http.server origin in the foreground under a temp dir, and stops both
# on exit.
#
# First it proves the configuration with curl: without credentials 407, wrong password 407,
# right password 200 with the file intact, both in absolute form (-x) and through a CONNECT
# tunnel (-p). Then it runs the `backhaul` CLI through the proxy on both runtimes: without,
# with wrong and with right proxy credentials, http in absolute form and https through a
# CONNECT tunnel, and the environment under PRECONFIG. Prints "N passed, N failed" and exits
# non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}

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
# shellcheck source=lib.sh
. "$here/lib.sh"

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

# An HTTPS origin for the CONNECT checks: Python's server with a test CA made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=backhaul-squid-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout "$D/key.pem" -out "$D/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$D/leaf.ext"
openssl x509 -req -in "$D/leaf.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
  -extfile "$D/leaf.ext" -out "$D/cert.pem" 2>/dev/null
port_tls=$(free_port)
python3 - "$port_tls" "$D" <<'PY' >/dev/null 2>&1 &
import functools, http.server, ssl, sys
port, d = int(sys.argv[1]), sys.argv[2]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=d + "/www")
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/cert.pem", d + "/key.pem")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
helper_pids+=($!)
wait_port "$port_tls"
secure="https://localhost:$port_tls/file.bin"
export BH_PROXY_PW=proxypw BH_WRONG_PW=nope

for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: through squid without proxy credentials → 0x80190197, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt --proxy '$proxy' '$origin' '$out/none' 2>'$out/none.err' && grep -q 0x80190197 '$out/none.err' && [ ! -e '$out/none' ]"
  check "$rt: through squid with a wrong proxy password → 0x80190197" \
    bash -c "! '$bin' transfer --runtime $rt --proxy '$proxy' --proxy-auth basic:bob --proxy-password-env BH_WRONG_PW '$origin' '$out/wrong' 2>'$out/wrong.err' && grep -q 0x80190197 '$out/wrong.err' && ! grep -q nope '$out/wrong.err'"
  check "$rt: http through squid (absolute form, Basic proxy auth), identical" \
    bash -c "'$bin' transfer -q --runtime $rt --proxy '$proxy' --proxy-auth basic:bob --proxy-password-env BH_PROXY_PW '$origin' '$out/abs' && cmp '$D/www/file.bin' '$out/abs'"
  check "$rt: https through a squid CONNECT tunnel, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy' --proxy-auth basic:bob --proxy-password-env BH_PROXY_PW '$secure' '$out/tls' && cmp '$D/www/file.bin' '$out/tls'"
  check "$rt: the environment (http_proxy) is followed under PRECONFIG" \
    bash -c "http_proxy='$proxy' '$bin' transfer -q --runtime $rt --proxy-auth basic:bob --proxy-password-env BH_PROXY_PW '$origin' '$out/env' && cmp '$D/www/file.bin' '$out/env'"
done
check "squid: saw backhaul's CONNECT and absolute-form requests as bob" \
  bash -c "grep -q 'CONNECT localhost:$port_tls bob' '$D/logs/access.log' && grep -q 'GET http://127.0.0.1:$port_origin/file.bin bob' '$D/logs/access.log'"

echo "interop (squid): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
