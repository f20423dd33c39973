#!/usr/bin/env bash
# Runs every fuzz target for a short time (default 20 s each; FUZZ_SECONDS=n to change), one
# after another, with AddressSanitizer, on the stable toolchain (RUSTC_BOOTSTRAP=1: cargo-fuzz
# passes -Z flags). Installs cargo-fuzz if it is missing. New inputs go to fuzz/work/<target>/
# (not checked in); the checked-in seeds in fuzz/corpus/<target>/ are only read. A finding
# stops the script with libFuzzer's report and leaves the input in fuzz/artifacts/<target>/:
# keep it as fuzz/regressions/<target>/<name> so `cargo test` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"
targets=(http_response job_record security_flags redirect_location engine_ops job_id auth_challenge proxy_settings socks5_reply byteranges daemon_protocol ntlm_challenge)

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O

for target in "${targets[@]}"; do
    mkdir -p "work/$target"
    echo "== fuzz $target (${seconds}s)"
    status=0
    cargo fuzz run -O "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"work/$target.log" 2>&1 || status=$?
    if [ "$status" -ne 0 ]; then
        tail -n 60 "work/$target.log"
        exit "$status"
    fi
    grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "work/$target.log"
done
