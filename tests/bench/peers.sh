# Shared by run.sh and profile.sh (sourced, not run): installs what the benchmark needs, builds
# backhaul, makes a tmpfs work directory, a test CA and leaf, the served file, and runs nginx on
# 127.0.0.1 over HTTP and HTTPS. `bench_cleanup` (set as the EXIT trap) stops every server this
# started, by its pid, and removes the directory.
#
# Inputs (env): BENCH_SIZE_MIB (default 1024), BENCH_TMPFS (default /dev/shm), BACKHAUL_BIN (a
# prebuilt binary; default: cargo build --release, honouring CARGO_TARGET_DIR).
# Outputs (shell variables): top, bin, D (work dir), SRC (served file), OUT (downloads),
# SIZE (bytes), URL_HTTP, URL_HTTPS, CA (PEM the clients trust), nginx_pid.

bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$bench_here/../.." && pwd)
SIZE_MIB=${BENCH_SIZE_MIB:-1024}
SIZE=$((SIZE_MIB * 1024 * 1024))
nginx_pid=
bench_pids=()
D=

# apt-get as root, or through sudo when there is one.
apt_install() {
  local sudo=
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "bench: installing $*" >&2
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Installs each missing tool: "command:package" pairs.
ensure_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

build_backhaul() {
  if [ -n "${BACKHAUL_BIN:-}" ]; then
    bin=$BACKHAUL_BIN
  else
    (cd "$top" && cargo build --release -q -p backhaul)
    bin=${CARGO_TARGET_DIR:-$top/target}/release/backhaul
  fi
  [ -x "$bin" ] || { echo "bench: no backhaul binary at $bin" >&2; exit 1; }
}

# A directory on tmpfs: BENCH_TMPFS (default /dev/shm) if it is tmpfs, else a tmpfs mounted
# for the run (needs root).
make_workdir() {
  local base=${BENCH_TMPFS:-/dev/shm}
  if [ "$(stat -f -c %T "$base" 2>/dev/null)" = tmpfs ]; then
    D=$(mktemp -d "$base/backhaul-bench.XXXXXX")
  else
    D=$(mktemp -d /tmp/backhaul-bench.XXXXXX)
    mount -t tmpfs -o size=$((SIZE_MIB * 3 + 64))m backhaul-bench "$D" ||
      { echo "bench: $base is not tmpfs and mounting one failed" >&2; exit 1; }
    BENCH_MOUNTED=1
  fi
  mkdir -p "$D/www" "$D/logs" "$D/tmp" "$D/out"
  SRC=$D/www/big.bin
  OUT=$D/out
}

# A CA and a leaf (CA:FALSE, serverAuth, SAN localhost + 127.0.0.1): webpki refuses CA:TRUE leaves.
make_pki() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=backhaul-bench-ca -keyout "$D/ca.key" -out "$D/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=localhost \
    -keyout "$D/key.pem" -out "$D/leaf.csr" 2>/dev/null
  printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$D/leaf.ext"
  openssl x509 -req -in "$D/leaf.csr" -CA "$D/ca.pem" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
    -extfile "$D/leaf.ext" -out "$D/cert.pem" 2>/dev/null
  CA=$D/ca.pem
}

make_source() {
  # Random bytes: nothing on the path can compress them. On tmpfs, so always "in the page cache".
  head -c "$SIZE" /dev/urandom >"$SRC"
  chmod 755 "$D" "$D/www"
  chmod 644 "$SRC"
}

wait_port() {
  local _
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# nginx as in /work/shared/test-peers.md: one worker, sendfile, TLS 1.2 and 1.3. The access log
# records the bytes sent and the negotiated protocol and cipher of every request.
start_nginx() {
  local port_http=$((20000 + RANDOM % 20000))
  local port_https=$((port_http + 1))
  cat >"$D/nginx.conf" <<CONF
worker_processes 1;
pid $D/nginx.pid;
error_log $D/logs/error.log;
events { worker_connections 1024; }
http {
  log_format bench '\$request_uri \$status \$body_bytes_sent "\$http_range" "\$ssl_protocol" "\$ssl_cipher" "\$http_user_agent"';
  access_log $D/logs/access.log bench;
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
    # For the kill -9 measurement: the same files at half the file's size per second, so a
    # transfer is reliably caught mid-file.
    location /throttled/ { alias $D/www/; limit_rate $((SIZE / 2)); }
  }
}
CONF
  local nginx_bin
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
  "$nginx_bin" -e "$D/logs/error.log" -c "$D/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  wait_port "$port_http"
  wait_port "$port_https"
  URL_HTTP=http://127.0.0.1:$port_http/big.bin
  URL_HTTPS=https://localhost:$port_https/big.bin
}

bench_cleanup() {
  local pid
  for pid in "${bench_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if [ -n "$D" ]; then
    [ -z "${BENCH_MOUNTED:-}" ] || umount "$D" 2>/dev/null || true
    rm -rf "$D"
  fi
}

# Everything up to a listening nginx serving $SRC.
bench_setup() {
  ensure_tools nginx:nginx curl:curl aria2c:aria2 openssl:openssl python3:python3
  [ -x /usr/bin/time ] || apt_install time
  build_backhaul
  trap bench_cleanup EXIT
  make_workdir
  make_pki
  make_source
  start_nginx
}
