#!/usr/bin/env bash
# Interop: a forward proxy that CHECKS NTLM passwords — Debian's apache2 with mod_proxy,
# mod_proxy_connect and mod_auth_gssapi + gss-ntlmssp in `<Proxy *>` (GssapiConnectionBound:
# the exchange must stay on one connection) — with the real `backhaul` CLI on both runtimes,
# for a plain origin (absolute form) and an HTTPS one (the CONNECT re-sent with each leg, then
# TLS inside the tunnel): NTLM and Negotiate (SPNEGO carrying NTLM) with the right password →
# the file; a wrong password → 0x80190197 without printing it; none → 0x80190197. Where
# squid_ntlm.sh (ntlm_fake_auth) proves the handshake with squid, this proves the password.
# Installs the packages if missing. Prints "N passed, N failed" and exits non-zero on any
# failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}
mods=/usr/lib/apache2/modules

if [ ! -x /usr/sbin/apache2 ] || [ ! -e "$mods/mod_auth_gssapi.so" ] \
  || [ ! -e /etc/gss/mech.d/mech.ntlmssp.conf ]; then
  echo "interop: installing apache2, mod_auth_gssapi and gss-ntlmssp"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2 libapache2-mod-auth-gssapi \
    gss-ntlmssp >/dev/null
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-proxy-ntlm.XXXXXX)
apache_pid=
helper_pids=()
cleanup() {
  for pid in "${helper_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$apache_pid" ]; then kill -TERM "$apache_pid" 2>/dev/null || true; wait "$apache_pid" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

mkdir -p "$D/www" "$D/logs" "$D/run" "$D/out"
head -c 1048576 /dev/urandom > "$D/www/file.bin"
# gss-ntlmssp's user file: DOMAIN:user:password.
echo 'PROXYDOM:dave:proxypw' > "$D/ntlm_users"
# The workers run as www-data: what they read must be world-readable.
chmod 755 "$D" "$D/www"
chmod 644 "$D/www/file.bin" "$D/ntlm_users"

port_proxy=$(free_port)
port_origin=$(free_port)
port_tls=$(free_port)
apache_head "$D" 127.0.0.1 "$port_proxy" auth_gssapi proxy proxy_http proxy_connect > "$D/httpd.conf"
cat >> "$D/httpd.conf" <<CONF
LogLevel info
KeepAlive On
ProxyRequests On
# Only the two loopback origins: nothing leaves the machine.
AllowCONNECT $port_tls
<Proxy *>
  Require all denied
</Proxy>
<ProxyMatch "^(http://127\.0\.0\.1:$port_origin/|localhost:$port_tls$)">
  AuthType GSSAPI
  AuthName "NTLM proxy"
  GssapiAllowedMech ntlmssp
  GssapiConnectionBound On
  Require valid-user
</ProxyMatch>
CONF
NTLM_USER_FILE="$D/ntlm_users" /usr/sbin/apache2 -f "$D/httpd.conf" -DFOREGROUND &
apache_pid=$!
python3 -m http.server "$port_origin" --bind 127.0.0.1 --directory "$D/www" >/dev/null 2>&1 &
helper_pids+=($!)

# The HTTPS origin behind the CONNECT: Python's server with a test CA made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=backhaul-proxy-ntlm-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout "$D/key.pem" -out "$D/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$D/leaf.ext"
openssl x509 -req -in "$D/leaf.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
  -extfile "$D/leaf.ext" -out "$D/cert.pem" 2>/dev/null
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
wait_port "$port_proxy" || { echo "apache2 did not start"; cat "$D/logs/error.log"; exit 1; }
wait_port "$port_origin"
wait_port "$port_tls"

proxy="http://127.0.0.1:$port_proxy"
export BH_RIGHT=proxypw BH_WRONG=guess-proxy
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  for u in "http://127.0.0.1:$port_origin/file.bin" "https://localhost:$port_tls/file.bin"; do
    kind=${u%%:*}
    how=$([ "$kind" = https ] && echo "on the CONNECT" || echo "absolute form")
    run="'$bin' transfer --runtime $rt --ca-file '$D/ca.pem' --proxy '$proxy'"
    check "$rt: $kind without proxy credentials → 0x80190197, nothing written" \
      bash -c "! $run '$u' '$out/none-$kind' 2>'$out/none-$kind.err' && grep -q 0x80190197 '$out/none-$kind.err' && [ ! -e '$out/none-$kind' ]"
    for scheme in ntlm negotiate; do
      check "$rt: $kind, $scheme proxy auth with the right password ($how), identical" \
        bash -c "$run -q --proxy-auth '$scheme:PROXYDOM\\dave' --proxy-password-env BH_RIGHT '$u' '$out/$scheme-$kind' && cmp '$D/www/file.bin' '$out/$scheme-$kind'"
    done
    check "$rt: $kind, NTLM with a wrong proxy password → 0x80190197, the password never printed" \
      bash -c "! $run --proxy-auth 'ntlm:PROXYDOM\\dave' --proxy-password-env BH_WRONG '$u' '$out/wrong-$kind' 2>'$out/wrong-$kind.err' && grep -q 0x80190197 '$out/wrong-$kind.err' && ! grep -q guess-proxy '$out/wrong-$kind.err'"
  done
done

echo "interop (apache NTLM proxy): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
