#!/usr/bin/env bash
# Interop: SOCKS5 through Debian's Dante server (danted) on 127.0.0.1, with the real `backhaul`
# binary on both runtimes: http and https (TLS with the origin inside the tunnel, the origin's
# certificate checked as on a direct connection) through `--proxy socks5://…`, and a SOCKS5
# proxy that refuses the destination ending the job in an error. Installs dante-server if it is
# missing. Prints "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}

if [ ! -x /usr/sbin/danted ]; then
  echo "interop: installing dante-server"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dante-server >/dev/null
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-socks.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -e "$D/danted.pid" ] && kill -TERM "$(cat "$D/danted.pid")" 2>/dev/null || true
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

mkdir -p "$D/www" "$D/out"
head -c 2097152 /dev/urandom > "$D/www/file.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=backhaul-socks-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout "$D/key.pem" -out "$D/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$D/leaf.ext"
openssl x509 -req -in "$D/leaf.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
  -extfile "$D/leaf.ext" -out "$D/cert.pem" 2>/dev/null

port_socks=$(free_port)
port_http=$(free_port)
port_tls=$(free_port)
port_closed=$(free_port)
cat > "$D/danted.conf" <<CONF
logoutput: $D/danted.log
internal: 127.0.0.1 port = $port_socks
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
socks block { from: 0.0.0.0/0 to: 127.0.0.1/32 port = $port_closed }
socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 command: connect }
CONF
/usr/sbin/danted -f "$D/danted.conf" -p "$D/danted.pid" >"$D/danted.out" 2>&1 &
pids+=($!)
python3 -m http.server "$port_http" --bind 127.0.0.1 --directory "$D/www" >/dev/null 2>&1 &
pids+=($!)
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
pids+=($!)
wait_port "$port_socks" || { echo "danted did not start"; cat "$D/danted.out" "$D/danted.log"; exit 1; }
wait_port "$port_http"
wait_port "$port_tls"

proxy="socks5://127.0.0.1:$port_socks"
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: http through SOCKS5, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --proxy '$proxy' http://127.0.0.1:$port_http/file.bin '$out/http' && cmp '$D/www/file.bin' '$out/http'"
  check "$rt: https through SOCKS5 (TLS inside the tunnel, checked), identical" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy' https://localhost:$port_tls/file.bin '$out/https' && cmp '$D/www/file.bin' '$out/https'"
  check "$rt: https through SOCKS5 without the CA → 0x80072F0D, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt --proxy '$proxy' https://localhost:$port_tls/file.bin '$out/untrusted' 2>'$out/untrusted.err' && grep -q 0x80072F0D '$out/untrusted.err' && [ ! -e '$out/untrusted' ]"
  check "$rt: a destination the proxy refuses → error, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt --no-progress-timeout 0 --proxy '$proxy' http://127.0.0.1:$port_closed/x '$out/refused' 2>'$out/refused.err' && grep -q SOCKS5 '$out/refused.err' && [ ! -e '$out/refused' ]"
done

echo "interop (socks): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
