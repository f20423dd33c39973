#!/usr/bin/env bash
# Interop: squid (Debian's package) asking for NTLM proxy authentication (ntlm_fake_auth) on
# 127.0.0.1, CONNECT allowed to loopback only, with a plain and an HTTPS (test CA) Python
# origin. Installs squid if it is missing; stops squid, its helpers and the origins on exit.
#
# What it proves: backhaul's NTLM exchange with a real proxy — the 407's body read, the next
# leg on the same connection, for absolute-form requests and for the CONNECT re-sent with each
# leg, then TLS to the origin inside the tunnel — on both runtimes with the real CLI; and that
# no proxy credentials end in 0x80190197. What it does not: ntlm_fake_auth accepts ANY
# password (a check below shows it); the password is checked by apache_proxy_ntlm.sh
# (gss-ntlmssp) and the simulation (tests/tests/sim_proxy_ntlm.rs, an sspi acceptor). Prints
# "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}

squid_bin=$(command -v squid || echo /usr/sbin/squid)
fake=/usr/lib/squid/ntlm_fake_auth
if [ ! -x "$squid_bin" ] || [ ! -x "$fake" ]; then
  echo "interop: installing squid"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq squid >/dev/null
  squid_bin=$(command -v squid || echo /usr/sbin/squid)
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-squid-ntlm.XXXXXX)
squid_pid=
helper_pids=()
cleanup() {
  for pid in "${helper_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$squid_pid" ]; then
    # The NTLM helpers are squid's children: stop them by PID too (test-peers.md).
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
# Started as root, squid drops to the `proxy` user, which writes the logs.
chmod 755 "$D"
if [ "$(id -u)" = 0 ] && id proxy >/dev/null 2>&1; then chown proxy:proxy "$D/logs"; fi

port_proxy=$(free_port)
port_origin=$(free_port)
cat > "$D/squid.conf" <<CONF
http_port 127.0.0.1:$port_proxy
visible_hostname backhaul-interop-ntlm
pid_filename $D/squid.pid
cache_log $D/logs/cache.log
access_log stdio:$D/logs/access.log
cache deny all
cache_mem 8 MB
coredump_dir $D/logs
shutdown_lifetime 1 seconds
pinger_enable off
auth_param ntlm program $fake
auth_param ntlm children 2
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

# An HTTPS origin for the CONNECT checks: Python's server with a test CA made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=backhaul-squid-ntlm-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
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

if ! wait_port "$port_proxy"; then
  echo "squid did not start:"; sed 's/^/     /' "$D/logs/squid.out" "$D/logs/cache.log" 2>/dev/null || true
  exit 1
fi
wait_port "$port_origin"
wait_port "$port_tls"

proxy="http://127.0.0.1:$port_proxy"
origin="http://127.0.0.1:$port_origin/file.bin"
secure="https://localhost:$port_tls/file.bin"

# The configuration first, with curl: NTLM is what squid asks for, and curl gets through.
check "squid: no credentials → 407 offering NTLM" \
  bash -c "curl -s -o /dev/null -D - -x '$proxy' '$origin' | grep -qi '^Proxy-Authenticate: NTLM'"
check "squid: curl --proxy-ntlm → 200 (absolute form) and through a CONNECT tunnel" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -x '$proxy' --proxy-ntlm -U 'DOM\\dave:pw' '$origin')\" = 200 ] && [ \"\$(curl -s -o /dev/null -w '%{http_connect}' -p -x '$proxy' --proxy-ntlm -U 'DOM\\dave:pw' '$origin')\" = 200 ]"

export BH_PROXY_PW=proxypw BH_OTHER_PW=anything-at-all
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  for u in "$origin" "$secure"; do
    kind=${u%%:*}
    check "$rt: $kind through squid without proxy credentials → 0x80190197, nothing written" \
      bash -c "! '$bin' transfer --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy' '$u' '$out/none-$kind' 2>'$out/none-$kind.err' && grep -q 0x80190197 '$out/none-$kind.err' && grep -q NTLM '$out/none-$kind.err' && [ ! -e '$out/none-$kind' ]"
  done
  check "$rt: http through squid, NTLM proxy auth (absolute form, three legs), identical" \
    bash -c "'$bin' transfer -q --runtime $rt --proxy '$proxy' --proxy-auth 'ntlm:DOM\\dave' --proxy-password-env BH_PROXY_PW '$origin' '$out/abs' && cmp '$D/www/file.bin' '$out/abs'"
  check "$rt: https through squid, NTLM on the CONNECT (re-sent on one connection), identical" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy' --proxy-auth 'ntlm:DOM\\dave' --proxy-password-env BH_PROXY_PW '$secure' '$out/tls' && cmp '$D/www/file.bin' '$out/tls'"
  check "$rt: ntlm_fake_auth checks no password: another one gets through too" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy' --proxy-auth 'ntlm:DOM\\dave' --proxy-password-env BH_OTHER_PW '$secure' '$out/other' && cmp '$D/www/file.bin' '$out/other'"
done
check "squid: logged backhaul's CONNECT and absolute-form GET as the NTLM user" \
  bash -c "grep -qE 'CONNECT localhost:$port_tls [^ ]*dave' '$D/logs/access.log' && grep -qE 'GET http://127.0.0.1:$port_origin/file.bin [^ ]*dave' '$D/logs/access.log'"

echo "interop (squid NTLM): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
