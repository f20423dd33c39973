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
