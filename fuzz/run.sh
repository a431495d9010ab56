#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (issue 18, item 15): `bash fuzz/run.sh [SECONDS]`
# (default 20 per target). Seeds come from fuzz/seeds/ (run files for every run-file target) and
# every saved failing input from fuzz/regressions/<target>/, so a regression fails at once.
#
# Needs cargo-fuzz (installed here when missing) and a nightly toolchain for the sanitizer
# flags; without nightly the stable compiler is used with RUSTC_BOOTSTRAP=1. Where neither
# works, or the sanitizer runtime is missing (then `-s none`), the script says why and skips:
# plain `cargo test` still replays every saved input (tests/fuzz_regressions.rs).
#
# A crash, timeout or out-of-memory fails the script; the input is in fuzz/artifacts/<target>/:
# copy it to fuzz/regressions/<target>/, fix, and commit both.
set -uo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
targets=(run_file merge schedule_toml intensity_csv cli_summary cli_export cli_report cli_compare cli_forecast)

skip() {
  echo "fuzzing skipped: $*"
  exit 0
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --version 0.13.2 --locked >/dev/null 2>&1 \
    || skip "cargo-fuzz is missing and could not be installed"
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
fi
sanitizer=()
if ! "${fuzz[@]}" build --release >build.log 2>&1; then
  sanitizer=(-s none)
  if ! "${fuzz[@]}" build --release "${sanitizer[@]}" >>build.log 2>&1; then
    tail -20 build.log
    skip "the fuzz targets do not build with this toolchain (see above)"
  fi
  echo "AddressSanitizer unavailable: fuzzing without a sanitizer (-s none)"
fi
rm -f build.log

failed=()
for t in "${targets[@]}"; do
  seeds="seeds/$t"
  case "$t" in
    cli_*) seeds="seeds/run_file" ;;
  esac
  mkdir -p "corpus/$t" "regressions/$t"
  echo "-- $t (${secs} s)"
  # -close_fd_mask=1: the CLI targets print their reports; stderr keeps libFuzzer's lines.
  if ! "${fuzz[@]}" run --release "${sanitizer[@]}" "$t" "corpus/$t" "$seeds" "regressions/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -close_fd_mask=1 \
    -print_final_stats=1 2>"$t.log"; then
    failed+=("$t")
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)|cov: ' "$t.log" | tail -3
  grep -E 'ERROR: libFuzzer|SUMMARY|panicked at|Test unit written' "$t.log" || true
  rm -f "$t.log"
done
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz targets found failing inputs: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: every target ran ${secs} s without a failure"
