#!/usr/bin/env bash
# Builds every fuzz target and gives each a short run from its seed corpus;
# fails if any target crashes. Longer runs: see fuzz/README.md.
#   SMOKE_SECS   seconds per target (default 10)
#   SANITIZER    cargo-fuzz sanitizer (default none: the crate forbids unsafe
#                code, and an uninstrumented build fits the CI time budget)
set -euo pipefail
cd "$(dirname "$0")"

SMOKE_SECS="${SMOKE_SECS:-10}"
SANITIZER="${SANITIZER:-none}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

mapfile -t targets < <(cargo +nightly fuzz list)
echo "==> building ${#targets[@]} fuzz targets (sanitizer: $SANITIZER)"
cargo +nightly fuzz build --sanitizer "$SANITIZER"

failed=()
for t in "${targets[@]}"; do
    echo "==> $t: ${SMOKE_SECS}s"
    # A scratch corpus so the committed seeds are never rewritten.
    corpus="$(mktemp -d)"
    if ! cargo +nightly fuzz run --sanitizer "$SANITIZER" "$t" "$corpus" "seeds/$t" -- \
        -max_total_time="$SMOKE_SECS" -rss_limit_mb=2048 -print_final_stats=1 \
        >"$corpus.log" 2>&1; then
        tail -n 40 "$corpus.log"
        failed+=("$t")
    else
        grep -E '^stat::number_of_executed_units|^Done' "$corpus.log" | tail -n 2 || true
    fi
    rm -rf "$corpus" "$corpus.log"
done

if ((${#failed[@]})); then
    echo "fuzz smoke run FAILED: ${failed[*]} (crash inputs under fuzz/artifacts/)"
    exit 1
fi
echo "fuzz smoke run passed: ${#targets[@]} targets"
