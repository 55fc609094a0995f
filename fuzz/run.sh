#!/usr/bin/env bash
# Runs every fuzz target with libFuzzer for SECONDS each (default 60), starting from the
# checked-in seeds, and prints the executions and the crashes of each.
#
#   bash fuzz/run.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). With a nightly toolchain installed it
# builds with AddressSanitizer; without one (or with FUZZ_STABLE=1) it builds on stable Rust
# with `--sanitizer none`, which passes no -Z flag and so needs no nightly: coverage-guided,
# panics and invariant failures still caught, no ASan, several times faster. The working corpus
# grows in fuzz/corpus/<target> (not committed); crashes land in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
targets=(verify timestamp client_ip config payload dedup_key)

if ! command -v cargo-fuzz >/dev/null; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
fi
if [[ -z "${FUZZ_STABLE:-}" ]] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    build_flags=(-O)
    echo "toolchain: nightly, AddressSanitizer"
else
    fuzz=(cargo +stable fuzz)
    build_flags=(-O --sanitizer none)
    echo "toolchain: stable, no sanitizer"
fi

"${fuzz[@]}" build "${build_flags[@]}"
bin="target/x86_64-unknown-linux-gnu/release"
failed=0
printf '%-10s %12s %8s %s\n' target executions crashes note
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    dict=()
    [[ -f "dict/$t.dict" ]] && dict=(-dict="dict/$t.dict")
    log="artifacts/$t/last-run.log"
    set +e
    # The binaries built above, run directly: `cargo fuzz run` would rebuild on any change.
    "$bin/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
        "corpus/$t" "seeds/$t" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    crashes=$(find "artifacts/$t" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | wc -l)
    note=""
    if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
        failed=1
        note="FAILED (exit $rc): see $log"
    fi
    printf '%-10s %12s %8s %s\n' "$t" "$execs" "$crashes" "$note"
done
exit "$failed"
