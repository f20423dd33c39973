#!/usr/bin/env bash
# Interop: Digest authentication against Debian's apache2 + mod_auth_digest (MD5, qop=auth, its
# own nonces), with the real `backhaul` binary on both runtimes: no credentials → ERROR
# 0x80190191, the right password → the file, a wrong one → 0x80190191; and through the daemon
# and its verbs, a job that fails with a wrong password, gets the right one with setcredentials,
# resumes from where it was, and completes. Installs apache2 if it is missing. Prints
# "N passed, N failed" and exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}
mods=/usr/lib/apache2/modules

if [ ! -x /usr/sbin/apache2 ] || [ ! -e "$mods/mod_auth_digest.so" ]; then
  echo "interop: installing apache2"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2 >/dev/null
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-apache.XXXXXX)
apache_pid=
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
  if [ -n "$apache_pid" ]; then kill -TERM "$apache_pid" 2>/dev/null || true; wait "$apache_pid" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

mkdir -p "$D/www/private" "$D/logs" "$D/run" "$D/out"
head -c 4194304 /dev/urandom > "$D/www/private/file.bin"
printf 'alice:test-realm:%s\n' "$(printf alice:test-realm:secret | md5sum | cut -d' ' -f1)" > "$D/htdigest"
# The workers run as www-data: everything they read must be world-readable.
chmod 755 "$D" "$D/www" "$D/www/private"
chmod 644 "$D/www/private/file.bin" "$D/htdigest"
port=$(free_port)
apache_head "$D" 127.0.0.1 "$port" authn_file auth_digest mime > "$D/httpd.conf"
cat >> "$D/httpd.conf" <<CONF
TypesConfig /etc/mime.types
DocumentRoot $D/www
<Location /private/>
  AuthType Digest
  AuthName "test-realm"
  AuthDigestDomain /private/
  AuthDigestProvider file
  AuthUserFile $D/htdigest
  Require valid-user
</Location>
CONF
/usr/sbin/apache2 -f "$D/httpd.conf" -DFOREGROUND &
apache_pid=$!
wait_port "$port" || { echo "apache2 did not start"; cat "$D/logs/error.log"; exit 1; }


url="http://127.0.0.1:$port/private/file.bin"
export BH_RIGHT=secret BH_WRONG=guess
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: Digest without credentials → 0x80190191, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt '$url' '$out/none' 2>'$out/none.err' && grep -q 0x80190191 '$out/none.err' && [ ! -e '$out/none' ]"
  check "$rt: Digest (MD5, qop=auth) with the right password, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --server-auth digest:alice --password-env BH_RIGHT '$url' '$out/right' && cmp '$D/www/private/file.bin' '$out/right'"
  check "$rt: Digest with a wrong password → 0x80190191, the password never printed" \
    bash -c "! '$bin' transfer --runtime $rt --server-auth digest:alice --password-env BH_WRONG '$url' '$out/wrong' 2>'$out/wrong.err' && grep -q 0x80190191 '$out/wrong.err' && ! grep -q guess '$out/wrong.err'"
done

# Wrong, then fixed with setcredentials + resume, through the daemon.
export BACKHAUL_SOCKET="$D/run/backhaul/backhaul.sock"
"$bin" daemon --store "$D/jobs.redb" >"$D/logs/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ -S "$BACKHAUL_SOCKET" ] && break; sleep 0.1; done
[ -S "$BACKHAUL_SOCKET" ] || { echo "the daemon did not start:"; cat "$D/logs/daemon.log"; exit 1; }
state_of() { "$bin" info "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])'; }
wait_state() {
  for _ in $(seq 300); do
    [ "$(state_of "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  "$bin" info "$1"; return 1
}
fixed_by_setcredentials() {
  local job
  job=$("$bin" create digest-fix)
  "$bin" addfile "$job" "$url" "$D/out/fixed"
  "$bin" setcredentials "$job" server digest alice --password-env BH_WRONG
  "$bin" resume "$job"
  wait_state "$job" ERROR
  "$bin" info "$job" | grep -q 0x80190191
  "$bin" setcredentials "$job" server digest alice --password-env BH_RIGHT
  "$bin" resume "$job"
  wait_state "$job" TRANSFERRED
  [ ! -e "$D/out/fixed" ]
  "$bin" complete "$job"
  cmp "$D/www/private/file.bin" "$D/out/fixed"
}
check "daemon: wrong password → ERROR 0x80190191; setcredentials + resume → file" fixed_by_setcredentials

echo "interop (apache): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
