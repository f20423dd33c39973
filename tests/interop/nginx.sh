#!/usr/bin/env bash
# Interop: the real `backhaul` binary, on both runtimes, against real servers on 127.0.0.1:
# nginx (Debian's package) over HTTP and HTTPS, nginx interrupted mid-body by a relay that cuts
# the connection (a real resume with Range + If-Range), and Python's http.server (HTTP/1.0, no
# keep-alive). Installs nginx if it is missing, starts everything in the foreground under a temp
# dir, stops it on exit. Prints "N passed, N failed" and exits non-zero on any failure.
#
# The certificate policy against nginx: one HTTPS server per certificate problem, with the
# certificates the project's own test PKI (rcgen, `tests/src/pki.rs`) issues, written by the
# `test_pki_files` bin of the tests crate (built here with cargo, or $BACKHAUL_TEST_PKI_BIN).
# Each problem is refused with its own code, waived by its own --security-flags name only;
# revocation is checked against CRLs nginx serves at the leaf's distribution point.
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
pki_bin=${BACKHAUL_TEST_PKI_BIN:-}
if [ -z "$pki_bin" ]; then
  (cd "$top" && cargo build -q -p backhaul-tests --bin test_pki_files)
  pki_bin=${CARGO_TARGET_DIR:-$top/target}/debug/test_pki_files
fi

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

# The certificate-policy servers: a free port each, none of the five above nor a repeat.
used_ports=" $port_http $((port_http + 1)) $((port_http + 2)) $((port_http + 3)) $((port_http + 4)) "
policy_port() {
  local p
  while :; do
    p=$(free_port)
    [[ $used_ports == *" $p "* ]] || break
  done
  used_ports+="$p "
  echo "$p"
}
problems=(expired not-yet-valid wrong-host client-auth-only)
declare -A port_of code_of own_flag_of
for name in good "${problems[@]}" revoked clean-crl no-crl; do port_of[$name]=$(policy_port); done
port_dead=$(policy_port) # nobody listens there: the unreachable CRL distribution point
code_of=([expired]=0x80072F05 [not-yet-valid]=0x80072F05 [wrong-host]=0x80072F06 [client-auth-only]=0x80072F93)
own_flag_of=([expired]=ignore-date [not-yet-valid]=ignore-date [wrong-host]=ignore-cn [client-auth-only]=ignore-wrong-usage)
ignore_flags=(ignore-cn ignore-date ignore-unknown-ca ignore-wrong-usage)
# $D/pki: the six sets; its revoked leaf's CRL (revoking it) is served at /crl/revoked.crl.
# $D/pki-clean and $D/pki-dead: two more PKIs whose "revoked" leaf is used as a good leaf with
# a CDP: at /crl/clean.crl (that CA's CRL revoking nothing), and on a port nobody listens on.
"$pki_bin" "$D/pki" "http://127.0.0.1:$port_http/crl/revoked.crl"
"$pki_bin" "$D/pki-clean" "http://127.0.0.1:$port_http/crl/clean.crl"
"$pki_bin" "$D/pki-dead" "http://127.0.0.1:$port_dead/crl/dead.crl"
chmod -R a+rX "$D/pki" "$D/pki-clean" "$D/pki-dead"
head -c 4096 /dev/urandom > "$D/www/policy.bin"
chmod 644 "$D/www/policy.bin"
policy_servers=
add_policy_server() { # NAME CERT_DIR
  policy_servers+="
  server {
    listen 127.0.0.1:${port_of[$1]} ssl;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate $2/chain.pem;
    ssl_certificate_key $2/key.pem;
    root $D/www;
  }"
}
for name in good "${problems[@]}" revoked; do add_policy_server "$name" "$D/pki/$name"; done
add_policy_server clean-crl "$D/pki-clean/revoked"
add_policy_server no-crl "$D/pki-dead/revoked"
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
    location = /crl/revoked.crl { alias $D/pki/revoked/crl.der; }
    location = /crl/clean.crl { alias $D/pki-clean/revoked/crl-clean.der; }
  }$policy_servers
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

# `url NAME`: policy.bin on the policy server NAME, by host name.
url() { echo "https://localhost:${port_of[$1]}/policy.bin"; }
# `refused RT CODE DEST URL ARGS...`: the transfer fails with CODE and writes nothing at DEST.
refused() {
  local rt=$1 code=$2 dest=$3 url=$4; shift 4
  if "$bin" transfer --runtime "$rt" "$@" "$url" "$dest" 2>"$dest.err"; then
    echo "transferred; expected $code"; return 1
  fi
  grep -q "$code" "$dest.err" || { echo "expected $code:"; cat "$dest.err"; return 1; }
  [ ! -e "$dest" ] || { echo "$dest was written"; return 1; }
}
# `refused_naming TEXT RT CODE DEST URL ARGS...`: refused, and the error's message has TEXT.
refused_naming() {
  local text=$1; shift
  refused "$@" && { grep -qF "$text" "$3.err" || { echo "no \"$text\" in:"; cat "$3.err"; return 1; }; }
}
# `fetched RT DEST URL ARGS...`: the transfer succeeds and DEST is policy.bin, byte for byte.
fetched() {
  local rt=$1 dest=$2 url=$3; shift 3
  "$bin" transfer -q --runtime "$rt" "$@" "$url" "$dest" && cmp "$D/www/policy.bin" "$dest"
}
# `crl_fetches PATH`: how many times nginx has served PATH with a 200.
crl_fetches() { grep -c "^$1 200 " "$D/logs/access.log" || true; }
# `refused_after_crl_fetch RT CODE CRL_PATH DEST URL ARGS...`: refused with CODE, and the
# client fetched the CRL from nginx to decide it.
refused_after_crl_fetch() {
  local rt=$1 code=$2 crl=$3 before; shift 3
  before=$(crl_fetches "$crl")
  refused "$rt" "$code" "$@" && [ "$(crl_fetches "$crl")" -gt "$before" ] \
    || { echo "$crl fetched $(crl_fetches "$crl") times, $before before"; return 1; }
}
# `fetched_after_crl_fetch RT CRL_PATH DEST URL ARGS...`: fetched, after fetching the CRL.
fetched_after_crl_fetch() {
  local rt=$1 crl=$2 before; shift 2
  before=$(crl_fetches "$crl")
  fetched "$rt" "$@" && [ "$(crl_fetches "$crl")" -gt "$before" ] \
    || { echo "$crl fetched $(crl_fetches "$crl") times, $before before"; return 1; }
}

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

  # The certificate policy, against nginx presenting the test PKI's certificates.
  pol="$out/policy"; mkdir -p "$pol"
  for p in "${problems[@]}"; do
    code=${code_of[$p]} own=${own_flag_of[$p]} ca="$D/pki/$p/ca.pem"
    check "$rt: $p: refused with $code by default, nothing written" \
      refused "$rt" "$code" "$pol/$p.none" "$(url "$p")" --ca-file "$ca"
    check "$rt: $p: --security-flags $own passes, identical" \
      fetched "$rt" "$pol/$p.own" "$(url "$p")" --ca-file "$ca" --security-flags "$own"
    for flag in "${ignore_flags[@]}"; do
      [ "$flag" = "$own" ] && continue
      check "$rt: $p: --security-flags $flag still refused with $code" \
        refused "$rt" "$code" "$pol/$p.$flag" "$(url "$p")" --ca-file "$ca" --security-flags "$flag"
    done
  done
  check "$rt: good certificate with --ca-file passes, identical" \
    fetched "$rt" "$pol/good" "$(url good)" --ca-file "$D/pki/good/ca.pem"
  check "$rt: unknown CA (no --ca-file): refused with 0x80072F0D, nothing written" \
    refused "$rt" 0x80072F0D "$pol/unknown.none" "$(url good)"
  check "$rt: unknown CA: --security-flags ignore-unknown-ca passes, identical" \
    fetched "$rt" "$pol/unknown.own" "$(url good)" --security-flags ignore-unknown-ca
  for flag in ignore-cn ignore-date ignore-wrong-usage; do
    check "$rt: unknown CA: --security-flags $flag still refused with 0x80072F0D" \
      refused "$rt" 0x80072F0D "$pol/unknown.$flag" "$(url good)" --security-flags "$flag"
  done
  revoked_ca="$D/pki/revoked/ca.pem"
  check "$rt: revoked leaf without crl passes, identical" \
    fetched "$rt" "$pol/revoked.none" "$(url revoked)" --ca-file "$revoked_ca"
  check "$rt: revoked leaf with crl: CRL fetched from nginx, refused with 0x80072F8A" \
    refused_after_crl_fetch "$rt" 0x80072F8A /crl/revoked.crl "$pol/revoked.crl" "$(url revoked)" \
      --ca-file "$revoked_ca" --security-flags crl
  check "$rt: revoked leaf with crl and every ignore flag: still 0x80072F8A" \
    refused "$rt" 0x80072F8A "$pol/revoked.all" "$(url revoked)" --ca-file "$revoked_ca" \
      --security-flags "crl,$(IFS=,; echo "${ignore_flags[*]}")"
  check "$rt: good leaf with crl, its CDP serving a CRL that revokes nothing: passes, identical" \
    fetched_after_crl_fetch "$rt" /crl/clean.crl "$pol/clean" "$(url clean-crl)" \
      --ca-file "$D/pki-clean/revoked/ca.pem" --security-flags crl
  check "$rt: crl with the CDP unreachable: refused with 0x80072F19 naming the CDP, nothing written" \
    refused_naming "http://127.0.0.1:$port_dead/crl/dead.crl: unreachable" \
      "$rt" 0x80072F19 "$pol/unreachable" "$(url no-crl)" \
      --ca-file "$D/pki-dead/revoked/ca.pem" --security-flags crl
  check "$rt: no temp file left behind" \
    bash -c "[ -z \"\$(find '$out' -name '.*.backhaul')\" ]"
done

echo "interop (nginx): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
