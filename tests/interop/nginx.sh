#!/usr/bin/env bash
# Interop: the real `backhaul` binary, on both runtimes, against real servers on 127.0.0.1:
# nginx (Debian's package) over HTTP and HTTPS, nginx interrupted mid-body by a relay that cuts
# the connection (a real resume with Range + If-Range), and Python's http.server (HTTP/1.0, no
# keep-alive). Installs nginx if it is missing, starts everything in the foreground under a temp
# dir, stops it on exit. Prints "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  echo "interop: installing nginx"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null 2>&1 \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-interop.XXXXXX)
nginx_pid=
helper_pids=()
cleanup() {
  for pid in "${helper_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$nginx_pid" ]; then kill -TERM "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

mkdir -p "$D/www/sub" "$D/logs" "$D/tmp" "$D/out"
# A CA and a leaf (CA:FALSE, serverAuth, SAN localhost + 127.0.0.1): webpki refuses CA:TRUE leaves.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=backhaul-interop-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
  -keyout "$D/key.pem" -out "$D/leaf.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$D/leaf.ext"
openssl x509 -req -in "$D/leaf.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
  -extfile "$D/leaf.ext" -out "$D/cert.pem" 2>/dev/null

head -c 33554432 /dev/urandom > "$D/www/big.bin"
head -c 1000 /dev/urandom > "$D/www/sub/small.bin"
mkdir -p "$D/www/private"
head -c 300000 /dev/urandom > "$D/www/private/secret.bin"
printf 'alice:%s\n' "$(openssl passwd -apr1 'wonder land')" > "$D/htpasswd"
: > "$D/www/empty.bin"
# nginx's workers run as an unprivileged user: the served tree must be world-readable.
chmod 755 "$D" "$D/www" "$D/www/sub" "$D/www/private"
chmod 644 "$D/www/big.bin" "$D/www/sub/small.bin" "$D/www/empty.bin" "$D/www/private/secret.bin" "$D/htpasswd"

port_http=$((20000 + RANDOM % 20000))
port_https=$((port_http + 1))
cat > "$D/nginx.conf" <<CONF
worker_processes 1;
pid $D/nginx.pid;
error_log $D/logs/error.log;
events { worker_connections 256; }
http {
  log_format ranges '\$request_uri \$status \$body_bytes_sent "\$http_range" "\$http_if_range"';
  access_log $D/logs/access.log ranges;
  sendfile on;
  client_body_temp_path $D/tmp; proxy_temp_path $D/tmp; fastcgi_temp_path $D/tmp;
  uwsgi_temp_path $D/tmp; scgi_temp_path $D/tmp;
  server {
    listen 127.0.0.1:$port_http;
    listen 127.0.0.1:$port_https ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $D/cert.pem;
    ssl_certificate_key $D/key.pem;
    root $D/www;
    location /moved { return 302 /sub/small.bin; }
    location /private/ { auth_basic "backhaul"; auth_basic_user_file $D/htpasswd; }
    location /gone { return 410; }
  }
}
CONF
"$nginx_bin" -e "$D/logs/error.log" -c "$D/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port_http") 2>/dev/null && break
  sleep 0.1
done

# A relay per runtime that cuts its first connection after 8 MiB of nginx's answer.
port_cut_tokio=$((port_http + 2))
port_cut_blocking=$((port_http + 3))
for port in "$port_cut_tokio" "$port_cut_blocking"; do
  python3 "$here/cutting_proxy.py" --listen "$port" --upstream "$port_http" --cut-after 8388608 \
    --lifetime 300 --ready-file "$D/proxy-$port.ready" &
  helper_pids+=($!)
done
# Python's http.server: HTTP/1.0, Content-Length, one request per connection, no ranges.
port_python=$((port_http + 4))
python3 -m http.server "$port_python" --bind 127.0.0.1 --directory "$D/www" >/dev/null 2>&1 &
helper_pids+=($!)
for _ in $(seq 50); do
  [ -e "$D/proxy-$port_cut_tokio.ready" ] && [ -e "$D/proxy-$port_cut_blocking.ready" ] && break
  sleep 0.1
done
wait_port "$port_python"

pin=$(openssl x509 -in "$D/cert.pem" -outform DER | sha256sum | cut -d' ' -f1)

# A 206 that nginx sent for a conditional range request on big.bin: one line per resume.
resumes_logged() { grep -cE '^/big.bin 206 [0-9]+ "bytes=[1-9][0-9]*-" "[^-]' "$D/logs/access.log" || true; }

resumed_against_nginx() {
  local rt=$1 port=$2 dest=$3 before
  before=$(resumes_logged)
  "$bin" transfer -q --runtime "$rt" --retry-delay 5 "http://127.0.0.1:$port/big.bin" "$dest" &&
    cmp "$D/www/big.bin" "$dest" &&
    [ "$(resumes_logged)" -gt "$before" ] || { tail -5 "$D/logs/access.log"; return 1; }
}

for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: 32 MiB over HTTP, identical" \
    bash -c "'$bin' transfer -q --runtime $rt http://127.0.0.1:$port_http/big.bin '$out/big.http' && cmp '$D/www/big.bin' '$out/big.http'"
  check "$rt: 32 MiB over HTTPS with --ca-file, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' https://localhost:$port_https/big.bin '$out/big.https' && cmp '$D/www/big.bin' '$out/big.https'"
  check "$rt: HTTPS to 127.0.0.1 (IP SAN)" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' https://127.0.0.1:$port_https/sub/small.bin '$out/small.ip' && cmp '$D/www/sub/small.bin' '$out/small.ip'"
  check "$rt: three files in one job (keep-alive), identical" \
    bash -c "'$bin' transfer -q --runtime $rt http://127.0.0.1:$port_http/sub/small.bin '$out/a' http://127.0.0.1:$port_http/empty.bin '$out/b' http://127.0.0.1:$port_http/big.bin '$out/c' && cmp '$D/www/sub/small.bin' '$out/a' && cmp '$D/www/empty.bin' '$out/b' && cmp '$D/www/big.bin' '$out/c'"
  check "$rt: redirect followed" \
    bash -c "'$bin' transfer -q --runtime $rt http://127.0.0.1:$port_http/moved '$out/moved' && cmp '$D/www/sub/small.bin' '$out/moved'"
  check "$rt: HTTPS without the CA is refused with 0x80072F0D, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt https://localhost:$port_https/sub/small.bin '$out/untrusted' 2>'$out/untrusted.err' && grep -q 0x80072F0D '$out/untrusted.err' && [ ! -e '$out/untrusted' ]"
  check "$rt: 404 exits non-zero with BG_E_HTTP_ERROR_404, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt http://127.0.0.1:$port_http/missing '$out/missing' 2>'$out/missing.err' && grep -q 'BG_E_HTTP_ERROR_404' '$out/missing.err' && grep -q 0x80190194 '$out/missing.err' && [ ! -e '$out/missing' ]"
  check "$rt: 410 is fatal (0x8019019A)" \
    bash -c "! '$bin' transfer --runtime $rt http://127.0.0.1:$port_http/gone '$out/gone' 2>'$out/gone.err' && grep -q 0x8019019A '$out/gone.err'"
  port_cut_var="port_cut_$rt"
  check "$rt: cut mid-body by the network, resumed against nginx with Range + If-Range (206), identical" \
    resumed_against_nginx "$rt" "${!port_cut_var}" "$out/resumed"
  check "$rt: HTTP/1.0 server (Python http.server), three files, identical" \
    bash -c "'$bin' transfer -q --runtime $rt http://127.0.0.1:$port_python/sub/small.bin '$out/p1' http://127.0.0.1:$port_python/big.bin '$out/p2' http://127.0.0.1:$port_python/empty.bin '$out/p3' && cmp '$D/www/sub/small.bin' '$out/p1' && cmp '$D/www/big.bin' '$out/p2' && cmp '$D/www/empty.bin' '$out/p3'"
  check "$rt: auth_basic without credentials → 0x80190191, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt http://127.0.0.1:$port_http/private/secret.bin '$out/noauth' 2>'$out/noauth.err' && grep -q 0x80190191 '$out/noauth.err' && [ ! -e '$out/noauth' ]"
  check "$rt: auth_basic with a wrong password → 0x80190191" \
    bash -c "! BH_PW=guess '$bin' transfer --runtime $rt --server-auth basic:alice --password-env BH_PW http://127.0.0.1:$port_http/private/secret.bin '$out/wrongauth' 2>'$out/wrongauth.err' && grep -q 0x80190191 '$out/wrongauth.err'"
  check "$rt: auth_basic with the right password (over HTTPS), identical" \
    bash -c "BH_PW='wonder land' '$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --server-auth basic:alice --password-env BH_PW https://localhost:$port_https/private/secret.bin '$out/auth' && cmp '$D/www/private/secret.bin' '$out/auth'"
  check "$rt: pinned to nginx's certificate, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --ca-file '$D/ca.pem' --pin-sha256 $pin https://localhost:$port_https/sub/small.bin '$out/pinned' && cmp '$D/www/sub/small.bin' '$out/pinned'"
  check "$rt: pinned to another certificate → TRUST_E_FAIL in the callback context, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt --ca-file '$D/ca.pem' --pin-sha256 $(printf 'ab%.0s' $(seq 32)) https://localhost:$port_https/sub/small.bin '$out/mispinned' 2>'$out/mispinned.err' && grep -q 0x800B010B '$out/mispinned.err' && grep -q CALLBACK '$out/mispinned.err' && [ ! -e '$out/mispinned' ]"
  check "$rt: --redirect-policy disallow → 0x8007012E on nginx's 302" \
    bash -c "! '$bin' transfer --runtime $rt --redirect-policy disallow http://127.0.0.1:$port_http/moved '$out/disallowed' 2>'$out/disallowed.err' && grep -q 0x8007012E '$out/disallowed.err'"
  check "$rt: no temp file left behind" \
    bash -c "[ -z \"\$(find '$out' -name '.*.backhaul')\" ]"
done

echo "interop (nginx): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
