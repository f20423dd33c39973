#!/usr/bin/env bash
# Interop: Negotiate as the logged-on user — Kerberos from the default credential cache
# (KRB5CCNAME), through the system GSS-API — against a private MIT KDC on 127.0.0.1 and Debian's
# apache2 + mod_auth_gssapi (SPN HTTP/localhost), with the real `backhaul` binary on both
# runtimes: with a ticket from kinit → the file, identical; with an empty credential cache →
# exit non-zero, 0x80190191 and the kinit hint, nothing at the destination (an empty cache, and
# one after kdestroy); a host name the KDC has no service for → 0x80190191; a token the server
# cannot read (its key changed) → 0x80190191; squid with negotiate_kerberos_auth as a Kerberos
# proxy for a plain origin: a ticket → the file, none → 0x80190197. The realm lives in a temp
# directory, set up through KRB5_CONFIG / KRB5_KDC_PROFILE only (/etc/krb5.conf is never
# touched). Installs the packages if missing. Prints "N passed, N failed" and exits non-zero on
# any failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${BACKHAUL_BIN:-${CARGO_TARGET_DIR:-$top/target}/debug/backhaul}
mods=/usr/lib/apache2/modules

if ! command -v krb5kdc >/dev/null || ! command -v kinit >/dev/null \
  || ! command -v kadmin.local >/dev/null || [ ! -x /usr/sbin/apache2 ] \
  || [ ! -e "$mods/mod_auth_gssapi.so" ]; then
  echo "interop: installing the MIT KDC, krb5 tools, apache2 and mod_auth_gssapi"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq krb5-kdc krb5-admin-server krb5-user \
    apache2 libapache2-mod-auth-gssapi >/dev/null
fi
[ -x "$bin" ] || (cd "$top" && cargo build -q -p backhaul)

D=$(mktemp -d /tmp/backhaul-krb.XXXXXX)
apache_pid=
kdc_pid=
squid_pid=
origin_pid=
cleanup() {
  if [ -n "$squid_pid" ]; then
    # Squid's auth helpers are its children: stop them by PID too (as squid.sh does).
    children=$(ps -o pid= --ppid "$squid_pid" 2>/dev/null || true)
    kill -TERM "$squid_pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$squid_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$squid_pid" 2>/dev/null || true
    wait "$squid_pid" 2>/dev/null || true
    for pid in $children; do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  for pid in "$apache_pid" "$kdc_pid" "$origin_pid"; do
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$D"
}
trap cleanup EXIT
# shellcheck source=lib.sh
. "$here/lib.sh"

K="$D/krb"
mkdir -p "$K" "$D/www/negotiate" "$D/logs" "$D/run" "$D/out"
kdc_port=$(free_port)
http_port=$(free_port)
cat > "$K/krb5.conf" <<CONF
[libdefaults]
  default_realm = TEST.LOCAL
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
  udp_preference_limit = 1
[realms]
  TEST.LOCAL = {
    kdc = 127.0.0.1:$kdc_port
  }
[domain_realm]
  localhost = TEST.LOCAL
  127.0.0.1 = TEST.LOCAL
CONF
cat > "$K/kdc.conf" <<CONF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$kdc_port
  kdc_tcp_listen = 127.0.0.1:$kdc_port
[realms]
  TEST.LOCAL = {
    database_name = $K/principal
    key_stash_file = $K/stash
    acl_file = $K/kadm5.acl
  }
[logging]
  kdc = FILE:$K/kdc.log
CONF
: > "$K/kadm5.acl"
export KRB5_CONFIG="$K/krb5.conf" KRB5_KDC_PROFILE="$K/kdc.conf"
kdb5_util create -s -r TEST.LOCAL -P masterpw >/dev/null
for q in "addprinc -pw userpw frank" "addprinc -randkey HTTP/localhost" \
  "ktadd -k $K/http.keytab HTTP/localhost"; do
  kadmin.local -q "$q" >/dev/null 2>&1
done
krb5kdc -n -P "$D/run/kdc.pid" >/dev/null 2>&1 &
kdc_pid=$!
wait_port "$kdc_port" || { echo "the KDC did not start"; cat "$K/kdc.log" 2>/dev/null; exit 1; }

head -c 3145728 /dev/urandom > "$D/www/negotiate/file.bin"
head -c 70000 /dev/urandom > "$D/www/negotiate/small.bin"
# The workers run as www-data: what they read must be readable by it (the keytab: by it only).
chmod 755 "$D" "$K" "$D/www" "$D/www/negotiate"
chmod 644 "$D/www/negotiate/file.bin" "$D/www/negotiate/small.bin" "$K/krb5.conf"
chown www-data "$K/http.keytab"
chmod 600 "$K/http.keytab"
apache_head "$D" localhost "$http_port" auth_gssapi mime > "$D/httpd.conf"
cat >> "$D/httpd.conf" <<CONF
LogLevel info
TypesConfig /etc/mime.types
DocumentRoot $D/www
KeepAlive On
<Location /negotiate/>
  AuthType GSSAPI
  AuthName "Kerberos"
  GssapiCredStore keytab:$K/http.keytab
  GssapiAllowedMech krb5
  Require valid-user
</Location>
CONF
/usr/sbin/apache2 -f "$D/httpd.conf" -DFOREGROUND &
apache_pid=$!
wait_port "$http_port" || { echo "apache2 did not start"; cat "$D/logs/error.log"; exit 1; }

url="http://localhost:$http_port/negotiate/file.bin"
url2="http://localhost:$http_port/negotiate/small.bin"
# Same server, a name with no service principal: the KDC refuses the service ticket.
unknown_url="http://127.0.0.1:$http_port/negotiate/file.bin"
with_ticket="FILE:$K/ccache"
KRB5CCNAME=$with_ticket kinit frank <<<"userpw" >/dev/null
: > "$K/empty-ccache"
echo "not a credential cache" > "$K/garbage-ccache"

check "the server refuses a request without a ticket (401, sanity)" \
  bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$url')\" = 401 ]"
for rt in tokio blocking; do
  out="$D/out/$rt"; mkdir -p "$out"
  check "$rt: a ticket from kinit answers Negotiate, file identical" \
    bash -c "KRB5CCNAME='$with_ticket' '$bin' transfer -q --runtime $rt --server-auth negotiate: '$url' '$out/ticket' && cmp '$D/www/negotiate/file.bin' '$out/ticket'"
  check "$rt: two files in one job, both identical" \
    bash -c "KRB5CCNAME='$with_ticket' '$bin' transfer -q --runtime $rt --server-auth negotiate: '$url' '$out/one' '$url2' '$out/two' && cmp '$D/www/negotiate/file.bin' '$out/one' && cmp '$D/www/negotiate/small.bin' '$out/two'"
  check "$rt: an empty credential cache → exit non-zero, 0x80190191 and kinit, no file" \
    bash -c "KRB5CCNAME='FILE:$K/empty-ccache' '$bin' transfer --runtime $rt --server-auth negotiate: '$url' '$out/empty' 2>'$out/empty.err'; [ \$? -eq 1 ] && grep -q 0x80190191 '$out/empty.err' && grep -q kinit '$out/empty.err' && [ ! -e '$out/empty' ]"
  check "$rt: a credential cache file of garbage → 0x80190191 and kinit, no crash, no file" \
    bash -c "KRB5CCNAME='FILE:$K/garbage-ccache'; export KRB5CCNAME; '$bin' transfer --runtime $rt --server-auth negotiate: '$url' '$out/garbage' 2>'$out/garbage.err'; [ \$? -eq 1 ] && grep -q 0x80190191 '$out/garbage.err' && grep -q kinit '$out/garbage.err' && [ ! -e '$out/garbage' ]"
  check "$rt: after kdestroy → 0x80190191 and kinit, no file" \
    bash -c "cp '$K/ccache' '$out/ccache' && KRB5CCNAME='FILE:$out/ccache' kdestroy && ! KRB5CCNAME='FILE:$out/ccache' '$bin' transfer --runtime $rt --server-auth negotiate: '$url' '$out/destroyed' 2>'$out/destroyed.err' && grep -q 0x80190191 '$out/destroyed.err' && grep -q kinit '$out/destroyed.err' && [ ! -e '$out/destroyed' ]"
  check "$rt: a host name with no service principal → 0x80190191, no file" \
    bash -c "! KRB5CCNAME='$with_ticket' '$bin' transfer --runtime $rt --server-auth negotiate: '$unknown_url' '$out/unknown' 2>'$out/unknown.err' && grep -q 0x80190191 '$out/unknown.err' && [ ! -e '$out/unknown' ]"
  check "$rt: without credentials → 0x80190191, nothing written" \
    bash -c "! KRB5CCNAME='$with_ticket' '$bin' transfer --runtime $rt '$url' '$out/none' 2>'$out/none.err' && grep -q 0x80190191 '$out/none.err' && [ ! -e '$out/none' ]"
done

# A Kerberos proxy: squid with negotiate_kerberos_auth (the same SPN, HTTP/localhost, its own
# copy of the keytab) in front of a plain origin; the proxy is named `localhost` so the
# service is HTTP@localhost.
squid_bin=$(command -v squid || echo /usr/sbin/squid)
if [ -x "$squid_bin" ] && [ -x /usr/lib/squid/negotiate_kerberos_auth ]; then
  mkdir -p "$D/squid" "$D/origin"
  cp "$D/www/negotiate/small.bin" "$D/origin/plain.bin"
  cp "$K/http.keytab" "$D/squid/proxy.keytab"
  if id proxy >/dev/null 2>&1; then chown -R proxy "$D/squid"; fi
  squid_port=$(free_port)
  origin_port=$(free_port)
  cat > "$D/squid/squid.conf" <<CONF
http_port 127.0.0.1:$squid_port
visible_hostname backhaul-kerberos
pid_filename $D/squid/squid.pid
cache_log $D/squid/cache.log
access_log stdio:$D/squid/access.log
cache deny all
cache_mem 8 MB
coredump_dir $D/squid
shutdown_lifetime 1 seconds
pinger_enable off
auth_param negotiate program /usr/lib/squid/negotiate_kerberos_auth -k $D/squid/proxy.keytab -s HTTP/localhost@TEST.LOCAL
auth_param negotiate children 2
acl authed proxy_auth REQUIRED
acl to_loopback dst 127.0.0.0/8
http_access deny !to_loopback
http_access allow localhost authed
http_access deny all
CONF
  "$squid_bin" -N -f "$D/squid/squid.conf" >"$D/squid/squid.out" 2>&1 &
  squid_pid=$!
  python3 -m http.server "$origin_port" --bind 127.0.0.1 --directory "$D/origin" >/dev/null 2>&1 &
  origin_pid=$!
  if wait_port "$squid_port" && wait_port "$origin_port"; then
    proxy="http://localhost:$squid_port"
    plain="http://127.0.0.1:$origin_port/plain.bin"
    for rt in tokio blocking; do
      out="$D/out/$rt"
      check "$rt: a Kerberos proxy (squid) gets the ticket's token, file identical" \
        bash -c "KRB5CCNAME='$with_ticket' '$bin' transfer -q --runtime $rt --proxy '$proxy' --proxy-auth negotiate: '$plain' '$out/proxied' && cmp '$D/origin/plain.bin' '$out/proxied'"
      check "$rt: the Kerberos proxy without a ticket → 0x80190197 and kinit, no file" \
        bash -c "KRB5CCNAME='FILE:$K/empty-ccache' '$bin' transfer --runtime $rt --proxy '$proxy' --proxy-auth negotiate: '$plain' '$out/proxied-none' 2>'$out/proxied-none.err'; [ \$? -eq 1 ] && grep -q 0x80190197 '$out/proxied-none.err' && grep -q kinit '$out/proxied-none.err' && [ ! -e '$out/proxied-none' ]"
    done
    check "squid logged the Kerberos user" grep -q 'frank@TEST.LOCAL' "$D/squid/access.log"
  else
    check "squid with negotiate_kerberos_auth starts" \
      bash -c "cat '$D/squid/squid.out' '$D/squid/cache.log'; false"
  fi
else
  echo "skip: squid or negotiate_kerberos_auth is not installed (the proxy checks need them)"
fi

# The service's key changes after apache loaded its keytab: a fresh ticket is made with the new
# key, which the server cannot read, so it refuses the token (a 401 after the exchange).
kadmin.local -q "cpw -randkey HTTP/localhost" >/dev/null 2>&1
for rt in tokio blocking; do
  out="$D/out/$rt"
  check "$rt: a token the server cannot accept (re-keyed service) → 0x80190191, no file" \
    bash -c "KRB5CCNAME='FILE:$out/rekeyed' kinit frank <<<userpw >/dev/null && ! KRB5CCNAME='FILE:$out/rekeyed' '$bin' transfer --runtime $rt --server-auth negotiate: '$url' '$out/rekeyed.bin' 2>'$out/rekeyed.err' && grep -q 0x80190191 '$out/rekeyed.err' && grep -q 'did not accept' '$out/rekeyed.err' && [ ! -e '$out/rekeyed.bin' ]"
done
# What a user sees without a ticket (the library's words, after the hint).
echo "     (without a ticket: $(grep -m1 -o '0x80190191.*' "$D/out/tokio/empty.err" || true))"
echo "     (a refused token: $(grep -m1 -o '0x80190191.*' "$D/out/tokio/rekeyed.err" || true))"

echo "interop (kerberos): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
