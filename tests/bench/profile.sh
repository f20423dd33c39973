#!/usr/bin/env bash
# Where a download's time goes: one download per driver and protocol (and curl's, for
# reference) from the same nginx set-up as run.sh, under
#   - strace -f: syscalls per MiB, and the sizes of the socket reads and file writes;
#   - perf record -e cpu-clock (a software clock: no hardware counters are needed), flat
#     profile of the hottest symbols, kernel included;
#   - valgrind --tool=dhat on 1 MiB and on BENCH_DHAT_MIB (default 64): allocations per MiB
#     transferred (the difference, so start-up does not count).
# Prints a report and leaves the raw files in BENCH_PROFILE_OUT (default /tmp/backhaul-profile).
#
#   tests/bench/profile.sh                 # 1 GiB file
#   BENCH_SIZE_MIB=256 tests/bench/profile.sh
#
# BENCH_PROFILE_TOOLS (default "backhaul-tokio backhaul-blocking curl"), BENCH_PROTOS,
# BENCH_PROFILE_STEPS (default "strace perf dhat").
set -euo pipefail

source "$(dirname "$0")/peers.sh"

TOOLS=${BENCH_PROFILE_TOOLS:-backhaul-tokio backhaul-blocking curl}
PROTOS=${BENCH_PROTOS:-http https}
STEPS=${BENCH_PROFILE_STEPS:-strace perf dhat}
DHAT_MIB=${BENCH_DHAT_MIB:-64}
PROF=${BENCH_PROFILE_OUT:-/tmp/backhaul-profile}
mkdir -p "$PROF"

ensure_tools strace:strace perf:linux-perf valgrind:valgrind
bench_setup
head -c $((DHAT_MIB * 1024 * 1024)) "$SRC" >"$D/www/small.bin"
head -c $((1024 * 1024)) "$SRC" >"$D/www/tiny.bin"
chmod 644 "$D/www/small.bin" "$D/www/tiny.bin"

url_for() {
  local proto=$1 file=$2
  if [ "$proto" = https ]; then echo "${URL_HTTPS/localhost/127.0.0.1}" | sed "s#/big.bin#/$file#"
  else echo "$URL_HTTP" | sed "s#/big.bin#/$file#"; fi
}

command_for() {
  local tool=$1 proto=$2 file=$3 url
  url=$(url_for "$proto" "$file")
  case $tool in
    backhaul-*) echo "$bin" transfer -q --runtime "${tool#backhaul-}" --ca-file "$CA" "$url" "$OUT/dl" ;;
    curl) echo curl -sS --fail --cacert "$CA" -o "$OUT/dl" "$url" ;;
  esac
}

# Calls, and bytes per call, of the syscalls on the data path, from an strace -f log.
io_sizes() {
  awk -v mib=$((SIZE / 1048576)) '
    $2 ~ /^[a-z0-9_]+\(/ || $2 == "<..." {
      call = ($2 == "<...") ? $3 : $2
      sub(/\(.*/, "", call)
      if ($0 ~ /unfinished \.\.\.>$/) next  # counted when it resumes
      total++
      if ($(NF - 1) == "=" && $NF ~ /^[0-9]+$/) { n[call]++; bytes[call] += $NF }
    }
    END {
      printf "    %d syscalls, %.1f per MiB\n", total, total / mib
      for (c in n) if (c ~ /^(read|recvfrom|recvmsg|readv|write|writev|pwrite64|sendto|sendmsg)$/)
        printf "    %-9s %7d calls, %6.1f per MiB, %8.0f bytes per call\n", c, n[c], n[c] / mib, bytes[c] / n[c]
    }' "$1"
}

for proto in $PROTOS; do
  for tool in $TOOLS; do
    name=$tool-$proto
    echo "== $name"
    if [[ " $STEPS " == *" strace "* ]]; then
      rm -f "$OUT/dl"
      strace -f -qq -o "$PROF/$name.strace" -e trace='!futex,epoll_wait,clock_gettime' $(command_for "$tool" "$proto" big.bin)
      strace -c -f -o "$PROF/$name.strace-c" $(command_for "$tool" "$proto" big.bin) >/dev/null 2>&1 || true
      cmp -s "$SRC" "$OUT/dl" || echo "    (the download under strace differs!)"
      io_sizes "$PROF/$name.strace"
      echo "    futex calls: $(awk '$NF == "futex" { print $4 }' "$PROF/$name.strace-c")"
    fi
    if [[ " $STEPS " == *" perf "* ]]; then
      rm -f "$OUT/dl"
      perf record -q -F 2000 -e cpu-clock -o "$PROF/$name.perf" $(command_for "$tool" "$proto" big.bin) 2>/dev/null
      perf report -i "$PROF/$name.perf" --stdio --sort dso,symbol 2>/dev/null |
        grep -E '^ +[0-9]' | head -15 | sed -E 's/^/   /; s/ +- +- *$//'  || true
    fi
    if [[ " $STEPS " == *" dhat "* && $tool == backhaul-* ]]; then
      # Two sizes, so that start-up (loading the system's roots, the runtime) cancels out.
      blocks=()
      for file in tiny.bin small.bin; do
        rm -f "$OUT/dl"
        valgrind --tool=dhat --dhat-out-file="$PROF/$name.$file.dhat" $(command_for "$tool" "$proto" "$file") \
          2>"$PROF/$name.$file.dhat.log" || true
        blocks+=("$(awk '/Total:/ { gsub(",", ""); print $6 }' "$PROF/$name.$file.dhat.log")")
      done
      echo "    allocations: ${blocks[0]} blocks for 1 MiB, ${blocks[1]} for $DHAT_MIB MiB:" \
        "$(( (blocks[1] - blocks[0]) / (DHAT_MIB - 1) )) per MiB transferred"
    fi
    rm -f "$OUT/dl"
  done
done
echo "raw files in $PROF"
