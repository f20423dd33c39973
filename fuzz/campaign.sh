#!/usr/bin/env bash
# The long campaign (docs/model.md, "Fuzzing"): runs each named fuzz target (all twelve when
# none is named) until it has executed RUNS inputs (default 10 million), one target per lane
# (LANES, default: the number of cores), at nice 19, without a time cap, so a run slowed down
# by other work still reaches its count. New inputs go to fuzz/work/<target>/; each run's
# libFuzzer log is work/<target>.<HHMM>.log and one summary line per run goes to
# work/campaign.log. A finding stops that lane with libFuzzer's report in its log and the
# input in artifacts/<target>/ (keep it in regressions/<target>/).
#
#   SANITIZER=none|address (default none: safe Rust gains little from ASan and runs 1.5–3x
#   faster without it; CI's short runs, fuzz/run-ci.sh, keep ASan)
#   Debug assertions and overflow checks are on (`-a`), so the engine's debug-only checks
#   (the drain contract in Engine::handle) run too. engine_ops is built without comparison
#   tracing (`--no-trace-compares`, its own target dir): see NO_TRACE_COMPARES below.
#   MERGE=1: afterwards, add to corpus/<target>/ the inputs that reach coverage edges the
#   checked-in corpus does not (libFuzzer -merge=1 -use_counters=0), so `cargo test` replays them
#
#   fuzz/campaign.sh                         # all twelve, 10 million each
#   RUNS=1000000 LANES=1 fuzz/campaign.sh http_response byteranges
set -euo pipefail
cd "$(dirname "$0")"
runs="${RUNS:-10000000}"
lanes="${LANES:-$(nproc)}"
sanitizer="${SANITIZER:-none}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^backhaul-fuzz$')
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
target_dir="target/campaign-$sanitizer"

# Targets built without libFuzzer's comparison tracing. engine_ops decodes byte pairs into an
# alphabet of operations where every pair is some operation, so there is no magic value for
# the tracing to find, and it was half of the target's time (perf: __sanitizer_cov_trace_*cmp*):
# without it the target runs 2x faster.
NO_TRACE_COMPARES=(engine_ops)

traces_compares() {
    local t
    for t in "${NO_TRACE_COMPARES[@]}"; do
        [ "$t" = "$1" ] && return 1
    done
    return 0
}

# The binary of target $1.
binary() {
    if traces_compares "$1"; then
        echo "$target_dir/x86_64-unknown-linux-gnu/release/$1"
    else
        echo "$target_dir-notc/x86_64-unknown-linux-gnu/release/$1"
    fi
}

built_all=0
for t in "${targets[@]}"; do
    if ! traces_compares "$t"; then
        cargo fuzz build -O -a --no-trace-compares -s "$sanitizer" --target-dir "$target_dir-notc" "$t"
    elif [ "$built_all" = 0 ]; then
        cargo fuzz build -O -a -s "$sanitizer" --target-dir "$target_dir"
        built_all=1
    fi
done

# Options a target needs beyond the defaults.
extra_args() {
    case "$1" in
        # The body reads 8 bytes of seed and 200 operations of 2 bytes: longer inputs only
        # slow the mutator down.
        engine_ops) echo "-max_len=408" ;;
    esac
}

run_lane() {
    local lane=$1 i t log start status
    for ((i = lane; i < ${#targets[@]}; i += lanes)); do
        t=${targets[$i]}
        mkdir -p "work/$t"
        log="work/$t.$(date +%H%M).log"
        start=$(date +%s)
        status=0
        # shellcheck disable=SC2046 # extra_args is zero or more words
        nice -n 19 "$(binary "$t")" -runs="$runs" -max_total_time=0 -print_final_stats=1 \
            $(extra_args "$t") "work/$t" "corpus/$t" >"$log" 2>&1 || status=$?
        echo "$(date +%T) $t exit=$status secs=$(($(date +%s) - start)) $(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" | tr -s ' \n' ' ')log=$log" \
            | tee -a work/campaign.log
        if [ "$status" -ne 0 ]; then
            tail -n 40 "$log"
            return "$status"
        fi
    done
}

mkdir -p work
echo "$(date +%T) campaign: ${targets[*]}; runs=$runs lanes=$lanes sanitizer=$sanitizer at $(git rev-parse --short HEAD 2>/dev/null || echo '?')" \
    | tee -a work/campaign.log
pids=()
for ((lane = 0; lane < lanes; lane++)); do
    run_lane "$lane" &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done

if [ "${MERGE:-0}" = 1 ]; then
    for t in "${targets[@]}"; do
        before=$(find "corpus/$t" -type f | wc -l)
        "$(binary "$t")" -merge=1 -use_counters=0 "corpus/$t" "work/$t" >"work/$t.merge.log" 2>&1
        echo "merged $t: corpus/$t $before -> $(find "corpus/$t" -type f | wc -l) files"
    done
fi
exit "$failed"
