#!/usr/bin/env bash
# Instruction-count guard of the hot path (issue 18, item 16): runs each case of
# benches/callgrind_step.rs under `valgrind --tool=callgrind`, collecting only inside the case's
# function, and fails when instructions per step exceed the budget below. Instruction counts are
# repeatable for one binary whatever the neighbours do, unlike wall time on a shared VM.
#
#   bash benches/callgrind.sh            # measure and check the budgets
#   CARINA_CALLGRIND_EXE=path bash ...    # use an already built bench binary
#
# Budgets: measured value + ~10 %, rounded up (numbers in benches/README.md). Raise one only with
# a reason in the commit that does.
#
# Taken jumps are counted too (`--collect-jumps`). A step with no run must cost its caller no
# jump of its own: the loop's back-edge is the only taken jump per iteration of `step_no_run`.
# Where a taken jump lands is the caller's code layout, which moved the no-run step between 1.4
# and 2.4 ns in wall time with the same instructions (benches/README.md, fourth pass).
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A BUDGET=(
  [two_tsc]=14
  [step_no_run]=21
  [step_guard]=92
)
declare -A JUMP_BUDGET=(
  [step_no_run]=1
)
ITERS=10000

if ! command -v valgrind >/dev/null 2>&1; then
  echo "valgrind is missing: cannot count the hot path's instructions" >&2
  exit 1
fi

exe="${CARINA_CALLGRIND_EXE:-}"
if [ -z "$exe" ]; then
  exe="$(cargo bench -p carina-benches --bench callgrind_step --no-run --message-format=json 2>/dev/null \
    | grep -o '"executable":"[^"]*"' | tail -1 | sed 's/"executable":"//; s/"$//')"
fi
if [ -z "$exe" ] || [ ! -x "$exe" ]; then
  echo "could not build benches/callgrind_step.rs" >&2
  exit 1
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
failed=0
declare -A PER_STEP
for case in two_tsc step_no_run step_guard; do
  valgrind --tool=callgrind --collect-jumps=yes --dump-instr=yes \
    --callgrind-out-file="$out/$case.out" --collect-atstart=no \
    "--toggle-collect=*case_$case*" "$exe" "$case" >"$out/$case.log" 2>&1 || {
    cat "$out/$case.log" >&2
    echo "callgrind run of $case failed" >&2
    exit 1
  }
  total="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/$case.out" | head -1)"
  if [ -z "$total" ] || [ "$total" -eq 0 ]; then
    echo "no instructions collected for $case (was case_$case inlined or renamed?)" >&2
    exit 1
  fi
  per=$(( (total + ITERS / 2) / ITERS ))
  PER_STEP[$case]=$per
  budget=${BUDGET[$case]}
  if [ "$per" -gt "$budget" ]; then
    verdict="OVER BUDGET"
    failed=1
  else
    verdict="ok"
  fi
  printf '%-12s %9d instructions / %d = %4d per iteration (budget %4d): %s\n' \
    "$case" "$total" "$ITERS" "$per" "$budget" "$verdict"
  # `jump=N` lines: unconditional jumps taken N times; `jcnd=T/E`: conditional, taken T of E.
  taken="$(sed -n 's/^jump=\([0-9]*\) .*/\1/p; s/^jcnd=\([0-9]*\)\/.*/\1/p' "$out/$case.out" \
    | awk '{ s += $1 } END { print s + 0 }')"
  jumps=$(( (taken + ITERS / 2) / ITERS ))
  jbudget="${JUMP_BUDGET[$case]:-}"
  if [ -n "$jbudget" ] && [ "$jumps" -gt "$jbudget" ]; then
    jverdict="OVER BUDGET"
    failed=1
  else
    jverdict="ok"
  fi
  printf '%-12s %9d taken jumps  / %d = %4d per iteration (budget %4s): %s\n' \
    "$case" "$taken" "$ITERS" "$jumps" "${jbudget:--}" "$jverdict"
done
guard_extra=$(( PER_STEP[step_guard] - PER_STEP[two_tsc] ))
echo "a recorded step costs $guard_extra instructions beyond its two TSC reads"
if [ "$failed" -ne 0 ]; then
  echo "the hot path exceeds its instruction or jump budget (benches/callgrind.sh); see benches/README.md" >&2
  exit 1
fi
