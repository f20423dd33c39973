# Shared by the interop scripts (sourced, after they set D, their temp directory).

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits up to 10 s for something to listen on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# `check NAME COMMAND...`: runs the command, prints ok/FAIL (with its output on failure) and
# counts it in $passed / $failed.
passed=0
failed=0
check() {
  local name=$1; shift
  if "$@" >"$D/last.log" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name"
  else
    failed=$((failed + 1)); echo "FAIL $name"; sed 's/^/     /' "$D/last.log"
  fi
}

# `apache_head DIR SERVER_NAME PORT MODULE...`: the part of an apache2 config every interop
# script shares — where it lives (DIR: run/, logs/), one loopback Listen, the event MPM and the
# authorization core, each extra MODULE (`auth_digest`, `auth_gssapi`, `proxy`, …), the
# www-data workers. Each script appends its own directives.
apache_head() {
  local dir=$1 name=$2 port=$3 mods=/usr/lib/apache2/modules module
  shift 3
  cat <<CONF
ServerRoot $dir
ServerName $name
Listen 127.0.0.1:$port
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule authn_core_module $mods/mod_authn_core.so
LoadModule authz_user_module $mods/mod_authz_user.so
CONF
  for module in "$@"; do
    echo "LoadModule ${module}_module $mods/mod_${module}.so"
  done
  cat <<CONF
User www-data
Group www-data
PidFile $dir/run/httpd.pid
DefaultRuntimeDir $dir/run
ErrorLog $dir/logs/error.log
CONF
}
