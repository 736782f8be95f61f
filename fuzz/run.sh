#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a bounded time under libFuzzer, with
# its memory limit, so that a panic, a crash, a hang past the per-input
# timeout (5 s) or runaway memory fails the run (exit status non-zero, the input
# kept in fuzz/artifacts/TARGET/). Installs what it needs: a nightly
# toolchain (sanitizer coverage is a nightly flag) and cargo-fuzz.
#
#   FUZZ_SECONDS   per target (default 40)
#   FUZZ_RSS_MB    libFuzzer's -rss_limit_mb (default 2048)
#   FUZZ_TARGETS   the targets to run (default all)
#
# The committed corpus (fuzz/corpus/TARGET) is read, never written: what a
# run finds goes to target/fuzz-corpus/TARGET, kept between runs.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
seconds="${FUZZ_SECONDS:-40}"
rss="${FUZZ_RSS_MB:-2048}"
cargo_fuzz_version="0.13.2"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing a nightly toolchain ..." >&2
  rustup toolchain install nightly --profile minimal
fi
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
  echo "fuzz: installing cargo-fuzz $cargo_fuzz_version ..." >&2
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

# No AddressSanitizer: the targets are safe Rust (a panic is caught as it
# is), and it would double the build and slow every input.
flags=(--sanitizer none --release --debug-assertions)
echo "fuzz: building the targets (nightly, sanitizer coverage) ..." >&2
cargo +nightly fuzz build "${flags[@]}"

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list | tr '\n' ' ')}"
summary=()
failed=()
for target in $targets; do
  work="$here/target/fuzz-corpus/$target"
  mkdir -p "$work" "corpus/$target"
  log="$here/target/fuzz-$target.log"
  echo "fuzz: $target for ${seconds}s (rss limit ${rss} MB) ..." >&2
  status=0
  cargo +nightly fuzz run "${flags[@]}" "$target" "$work" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb="$rss" -timeout=5 -max_len=65536 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  units=$(ls "$work" | wc -l)
  if [[ $status -ne 0 ]]; then
    failed+=("$target")
    summary+=("$(printf '%-12s %10s runs  FAILED (exit %s): see %s and fuzz/artifacts/%s/' "$target" "$runs" "$status" "$log" "$target")")
    grep -E "panicked at|ERROR: libFuzzer|SUMMARY|Test unit written|Base64" "$log" | head -20 >&2 || true
  else
    summary+=("$(printf '%-12s %10s runs  %5s corpus inputs  ok' "$target" "$runs" "$units")")
  fi
done
echo "== fuzz summary (${seconds}s each)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
