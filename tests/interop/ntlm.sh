#!/usr/bin/env bash
# Interop: NTLM (v2) against a real, password-checking acceptor — Debian's apache2 +
# mod_auth_gssapi + gss-ntlmssp (GssapiConnectionBound: the exchange must stay on one keep-alive
# connection) — with the real `backhaul` binary on both runtimes: no credentials → ERROR
# 0x80190191; NTLM with the right password → the file; a wrong one → 0x80190191 (the password
# never printed); Negotiate (SPNEGO carrying NTLM) with the right password → the file. Installs
# the packages if missing. Prints "N passed, N failed" and exits non-zero on any failure.
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

D=$(mktemp -d /tmp/backhaul-ntlm.XXXXXX)
apache_pid=
cleanup() {
  if [ -n "$apache_pid" ]; then kill -TERM "$apache_pid" 2>/dev/null || true; wait "$apache_pid" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

mkdir -p "$D/www/ntlm" "$D/logs" "$D/run" "$D/out"
head -c 3145728 /dev/urandom > "$D/www/ntlm/file.bin"
# gss-ntlmssp's user file: DOMAIN:user:password.
echo 'TESTDOM:gina:ntlmpw' > "$D/ntlm_users"
# The workers run as www-data: everything they read must be world-readable.
chmod 755 "$D" "$D/www" "$D/www/ntlm"
chmod 644 "$D/www/ntlm/file.bin" "$D/ntlm_users"
port=$(free_port)
apache_head "$D" 127.0.0.1 "$port" auth_gssapi mime > "$D/httpd.conf"
cat >> "$D/httpd.conf" <<CONF
LogLevel info
TypesConfig /etc/mime.types
DocumentRoot $D/www
KeepAlive On
<Location /ntlm/>
  AuthType GSSAPI
  AuthName "NTLM"
  GssapiAllowedMech ntlmssp
  GssapiConnectionBound On
  Require valid-user
</Location>
CONF
NTLM_USER_FILE="$D/ntlm_users" /usr/sbin/apache2 -f "$D/httpd.conf" -DFOREGROUND &
apache_pid=$!
wait_port "$port" || { echo "apache2 did not start"; cat "$D/logs/error.log"; exit 1; }


url="http://127.0.0.1:$port/ntlm/file.bin"
export BH_RIGHT=ntlmpw BH_WRONG=guess-ntlm
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: NTLM server without credentials → 0x80190191, nothing written" \
    bash -c "! '$bin' transfer --runtime $rt '$url' '$out/none' 2>'$out/none.err' && grep -q 0x80190191 '$out/none.err' && [ ! -e '$out/none' ]"
  check "$rt: NTLM with the right password (three legs, one connection), identical" \
    bash -c "'$bin' transfer -q --runtime $rt --server-auth 'ntlm:TESTDOM\\gina' --password-env BH_RIGHT '$url' '$out/right' && cmp '$D/www/ntlm/file.bin' '$out/right'"
  check "$rt: NTLM with a wrong password → 0x80190191, the password never printed" \
    bash -c "! '$bin' transfer --runtime $rt --server-auth 'ntlm:TESTDOM\\gina' --password-env BH_WRONG '$url' '$out/wrong' 2>'$out/wrong.err' && grep -q 0x80190191 '$out/wrong.err' && ! grep -q guess-ntlm '$out/wrong.err'"
  check "$rt: Negotiate (SPNEGO with NTLM) with the right password, identical" \
    bash -c "'$bin' transfer -q --runtime $rt --server-auth 'negotiate:TESTDOM\\gina' --password-env BH_RIGHT '$url' '$out/spnego' && cmp '$D/www/ntlm/file.bin' '$out/spnego'"
done

echo "interop (ntlm): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
