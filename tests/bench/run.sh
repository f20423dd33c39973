#!/usr/bin/env bash
# The download benchmark of issue 7: backhaul (tokio and blocking drivers) against curl and
# aria2c, one 1 GiB file served by nginx on 127.0.0.1 over HTTP and HTTPS, downloaded into a
# tmpfs directory; alternating runs; wall time, user+sys CPU and peak RSS from /usr/bin/time -v;
# the ceilings measured in the same run (dd to the same tmpfs, a raw TCP loopback copy, curl to
# /dev/null). Prints medians (min–max) with ratios to curl and to the ceilings, and writes them
# to docs/performance.md (for a full-size run).
#
# From a fresh clone (installs nginx, curl, aria2, time with apt-get when missing; builds
# backhaul in release):
#
#   tests/bench/run.sh
#
# Environment:
#   BENCH_RUNS=5              runs of each tool (alternating: one of each per round)
#   BENCH_SIZE_MIB=1024       file size; e.g. 64 for a quick check
#   BENCH_TOOLS="backhaul-tokio backhaul-blocking curl aria2c"   add aria2c-x4 for 4 connections
#   BENCH_PROTOS="http https"
#   BENCH_TMPFS=/dev/shm      where the tmpfs work dir goes (a tmpfs is mounted if it is not one)
#   BENCH_DOC=auto            1: update docs/performance.md, 0: don't, auto: only for a 1 GiB
#                             run with at least 3 runs
#   BENCH_RESTART=0           1: also measure the bytes re-fetched after a kill -9 at half the
#                             file (per driver). BENCH_RESTART_ARGS: extra `backhaul transfer`
#                             arguments for it (default: `--store <a file of its own>`, so the
#                             same command resumes the killed job; set it to " " to measure a
#                             transfer without a store, which starts over);
#                             BENCH_RESUME_CMD: the command run after the kill (default: the
#                             same transfer again); it sees $URL and $DEST.
#   BACKHAUL_BIN              use this binary instead of building one
#   BENCH_BASE_BIN            another backhaul binary (say, before a change): the tools
#                             base-tokio and base-blocking run it, alternating with the others
set -euo pipefail

source "$(dirname "$0")/peers.sh"

RUNS=${BENCH_RUNS:-5}
TOOLS=${BENCH_TOOLS:-backhaul-tokio backhaul-blocking curl aria2c}
PROTOS=${BENCH_PROTOS:-http https}
CEILINGS="dd tcp curl-null"
DOC=${BENCH_DOC:-auto}
if [ "$DOC" = auto ]; then
  if [ "$SIZE_MIB" -eq 1024 ] && [ "$RUNS" -ge 3 ]; then DOC=1; else DOC=0; fi
fi

bench_setup
SAMPLES=$D/samples.tsv
printf 'tool\tproto\trun\twall_s\tuser_s\tsys_s\trss_kib\n' >"$SAMPLES"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

url_of() { if [ "$1" = https ]; then echo "${URL_HTTPS/localhost/127.0.0.1}"; else echo "$URL_HTTP"; fi; }

# The command line of one tool for one protocol, writing to $OUT/dl.
command_of() {
  local tool=$1 proto=$2 url
  url=$(url_of "$proto")
  case $tool in
    backhaul-tokio | backhaul-blocking)
      echo "$bin" transfer -q --runtime "${tool#backhaul-}" --ca-file "$CA" "$url" "$OUT/dl" ;;
    base-tokio | base-blocking)
      echo "${BENCH_BASE_BIN:?base-* tools need BENCH_BASE_BIN}" transfer -q --runtime "${tool#base-}" \
        --ca-file "$CA" "$url" "$OUT/dl" ;;
    curl) echo curl -sS --fail --cacert "$CA" -o "$OUT/dl" "$url" ;;
    aria2c | aria2c-x4)
      local split=
      [ "$tool" = aria2c-x4 ] && split="-x4 -s4 -k1M"
      echo aria2c -q $split --file-allocation=none --allow-overwrite=true --auto-file-renaming=false \
        --ca-certificate="$CA" -d "$OUT" -o dl "$url" ;;
    curl-null) echo curl -sS --fail --cacert "$CA" -o /dev/null "$url" ;;
    dd) echo dd if=/dev/zero of="$OUT/dl" bs=1M count="$SIZE_MIB" status=none ;;
    tcp) echo python3 "$bench_here/tcp_ceiling.py" "$SRC" ;;
    *) echo "bench: unknown tool $tool" >&2; exit 2 ;;
  esac
}

# One measured run: wall time (ns clock around the process), CPU and peak RSS (time -v).
measure() {
  local tool=$1 proto=$2 run=$3 cmd t0 t1 wall
  cmd=$(command_of "$tool" "$proto")
  rm -f "$OUT/dl"
  sync_point
  t0=$(date +%s%N)
  if ! /usr/bin/time -v -o "$D/time.txt" $cmd >"$D/stdout.txt" 2>"$D/stderr.txt"; then
    echo "bench: $tool $proto run $run failed:" >&2
    cat "$D/stderr.txt" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')
  case $tool in
    tcp) wall=$(cat "$D/stdout.txt") ;; # the copy itself, without Python's start-up
    curl-null) ;;
    dd) [ "$(stat -c %s "$OUT/dl")" -eq "$SIZE" ] || { echo "bench: dd wrote a short file" >&2; exit 1; } ;;
    *) cmp -s "$SRC" "$OUT/dl" || { echo "bench: $tool $proto run $run: the download differs" >&2; exit 1; } ;;
  esac
  rm -f "$OUT/dl"
  awk -v tool="$tool" -v proto="$proto" -v run="$run" -v wall="$wall" -F': ' '
    /User time \(seconds\)/ { user = $2 }
    /System time \(seconds\)/ { sys = $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", tool, proto, run, wall, user, sys, rss }
  ' "$D/time.txt" >>"$SAMPLES"
  printf '  %-18s %-5s run %s: %6.3f s\n' "$tool" "$proto" "$run" "$wall"
}

# Let the previous run's pages settle (tmpfs frees them on unlink) before the next starts.
sync_point() { sleep 0.2; }

# Every (tool, proto) of this run, ceilings included.
entries=()
for tool in $TOOLS; do
  for proto in $PROTOS; do entries+=("$tool $proto"); done
done
entries+=("dd -" "tcp -")
for proto in $PROTOS; do entries+=("curl-null $proto"); done

echo "bench: $SIZE_MIB MiB, $RUNS runs, work dir $D (tmpfs), backhaul $bin"
for run in $(seq "$RUNS"); do
  echo "round $run"
  # Rotate the starting point each round, so that no tool always runs right after another.
  n=${#entries[@]}
  for i in $(seq 0 $((n - 1))); do
    read -r tool proto <<<"${entries[$(((i + run - 1) % n))]}"
    measure "$tool" "$proto" "$run"
  done
done

# The bytes re-fetched after a kill -9 at half the file, per driver.
RESTART=$D/restart.tsv
printf 'runtime\tkilled_at\trefetched\n' >"$RESTART"
restart_once() {
  local runtime=$1 url=${URL_HTTP/big.bin/throttled/big.bin} dest=$OUT/restart pid temp_size=0 before sent
  rm -f "$dest" "$OUT"/.restart*
  before=$(wc -l <"$D/logs/access.log")
  # shellcheck disable=SC2086
  "$bin" transfer -q --runtime "$runtime" $BENCH_RESTART_ARGS "$url" "$dest" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    temp_size=$(find "$OUT" -maxdepth 1 -name '.restart*' -printf '%s\n' 2>/dev/null | head -1)
    [ "${temp_size:-0}" -ge $((SIZE / 2)) ] && break
    sleep 0.005
  done
  kill -KILL "$pid" 2>/dev/null || { echo "bench: restart $runtime: the transfer ended before the kill" >&2; return 0; }
  wait "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [ "$(wc -l <"$D/logs/access.log")" -gt "$before" ] && break; sleep 0.05; done
  URL=$url DEST=$dest bash -c "${BENCH_RESUME_CMD:-\"$bin\" transfer -q --runtime $runtime $BENCH_RESTART_ARGS \"\$URL\" \"\$DEST\"}"
  cmp -s "$SRC" "$dest" || { echo "bench: restart $runtime: the resumed file differs" >&2; exit 1; }
  sent=$(tail -n +$((before + 1)) "$D/logs/access.log" | awk '$1 ~ /big[.]bin$/ { s += $3 } END { print s + 0 }')
  printf '%s\t%s\t%s\n' "$runtime" "$temp_size" $((sent - SIZE)) >>"$RESTART"
  echo "  restart $runtime: killed at $temp_size bytes on disk, re-fetched $((sent - SIZE)) bytes"
  rm -f "$dest" "$OUT"/.restart*
}
if [ "${BENCH_RESTART:-0}" = 1 ]; then
  BENCH_RESTART_ARGS=${BENCH_RESTART_ARGS:---store $D/restart-jobs.redb}
  for runtime in tokio blocking; do restart_once "$runtime"; done
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
ciphers=$D/ciphers.tsv
# The protocol and cipher nginx negotiated with each client (by User-Agent), for the table.
awk -F'"' '$4 != "-" && $4 != "" { split($8, ua, "/"); print ua[1] "\t" $4 " " $6 }' "$D/logs/access.log" |
  sort -u >"$ciphers"

# The settings of this run that differ from the defaults, for the "reproduce" line.
reproduce_env() {
  local env="BENCH_RUNS=$RUNS BENCH_SIZE_MIB=$SIZE_MIB"
  [ "$TOOLS" = "backhaul-tokio backhaul-blocking curl aria2c" ] || env+=" BENCH_TOOLS=\"$TOOLS\""
  [ "$PROTOS" = "http https" ] || env+=" BENCH_PROTOS=\"$PROTOS\""
  [ "${BENCH_RESTART:-0}" = 0 ] || env+=" BENCH_RESTART=1"
  echo "$env"
}
summary_args=(--samples "$SAMPLES" --size "$SIZE" --runs "$RUNS" --ciphers "$ciphers"
  --load "$load_start → $load_end" --command "$(basename "$0")"
  --env "$(reproduce_env)" --restart "$RESTART")
python3 "$bench_here/summarize.py" "${summary_args[@]}"
if [ "$DOC" = 1 ]; then
  python3 "$bench_here/summarize.py" "${summary_args[@]}" --update "$top/docs/performance.md"
  echo "bench: docs/performance.md updated"
fi
