#!/usr/bin/env bash
# Runs every unit test binary and every integration test against the binaries
# in BUILD (default build/san), and ends with the line "N passed, N failed".
#
# Each test program prints "PASS name", "FAIL name ..." or "SKIP name ..."
# lines; a program that dies without saying why counts as one failure.
set -u
BUILD=${1:-build/san}
cd "$(dirname "$0")/.."
export T2M_BUILD="$PWD/$BUILD"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=86"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
export PYTHONDONTWRITEBYTECODE=1

passed=0 failed=0 skipped=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_one() {  # name, command...
    local name=$1; shift
    echo "== $name"
    "$@" >"$log" 2>&1
    local rc=$?
    cat "$log"
    local p f s
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    case "$t" in *.d) continue ;; esac
    run_one "unit $(basename "$t")" "$t"
done
# Integration tests run two at a time (each uses its own ports and processes);
# their output is printed whole, one test after another.
outdir=$(mktemp -d)
trap 'rm -rf "$log" "$outdir"' EXIT
ls tests/integration/test_*.py 2>/dev/null | xargs -r -P "${T2M_JOBS:-2}" -I{} sh -c \
    'n=$(basename "$1" .py); timeout 600 python3 "$1" >"$2/$n.out" 2>&1; echo $? >"$2/$n.rc"' _ {} "$outdir"
for t in tests/integration/test_*.py; do
    [ -f "$t" ] || continue
    n=$(basename "$t" .py)
    echo "== integration $n"
    cat "$outdir/$n.out"
    rc=$(cat "$outdir/$n.rc" 2>/dev/null || echo 1)
    p=$(grep -c '^PASS ' "$outdir/$n.out"); f=$(grep -c '^FAIL ' "$outdir/$n.out"); s=$(grep -c '^SKIP ' "$outdir/$n.out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $n exited with status $rc"
        f=1
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done

# Every fuzz target is built and run briefly, so none rots between `make fuzz`
# runs (make fuzz runs each for a minute or more).
if [ "${T2M_FUZZ_SECONDS:-3}" -gt 0 ]; then
    run_one "fuzz smoke (${T2M_FUZZ_SECONDS:-3}s each)" bash tests/fuzz/run.sh "${T2M_FUZZ_SECONDS:-3}"
fi

echo
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
