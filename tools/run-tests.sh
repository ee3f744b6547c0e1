#!/bin/sh
# run-tests.sh — run guardiand's test suites and print one summary line.
#
#   sh tools/run-tests.sh unit BUILD BIN...          each criterion binary
#   sh tools/run-tests.sh integration BUILD BIN...   the same, with GUARDIAND=BUILD/bin/guardiand
#   sh tools/run-tests.sh python BUILD               /usr/bin/python3 -m pytest -q tests/integration
#   sh tools/run-tests.sh sanitizer-reports BUILD    fail, printing them, if BUILD/reports/ has files
#   sh tools/run-tests.sh fuzz FUZZ_BUILD RUNS TARGET...  each fuzz target's regression (tools/fuzz.sh):
#                                                    its seeds and crash reproducers, then RUNS mutations
#
# The last line is "N passed, N failed" over every test it ran (a criterion binary or pytest
# run that fails without reporting a failed test counts as one failure; a fuzz target is one
# test, failed if it crashes); the exit status is non-zero if anything failed. When BUILD contains "asan" the binaries (and the daemons the
# tests start) write sanitizer reports into BUILD/reports/ instead of the terminal, and leaks
# inside libca/libCom are suppressed by tests/lsan.supp. Python is not instrumented: only the
# daemon it starts reads ASAN_OPTIONS (nothing is LD_PRELOADed). Run from anywhere; paths are
# taken relative to the repository root.
set -u

usage() {
    echo "usage: sh tools/run-tests.sh unit|integration BUILD BIN... | python BUILD |" \
        "sanitizer-reports BUILD | fuzz FUZZ_BUILD RUNS TARGET..." >&2
    exit 2
}

[ $# -ge 2 ] || usage
mode=$1
build=$2
shift 2

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
case "$build" in
/*) abs_build=$build ;;
*) abs_build=$root/$build ;;
esac

passed=0
failed=0
out=$(mktemp "${TMPDIR:-/tmp}/run-tests.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT INT TERM

summary() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit $?
}

sanitizer_env() {
    case "$build" in
    *asan*)
        mkdir -p "$abs_build/reports"
        ASAN_OPTIONS="log_path=$abs_build/reports/asan:halt_on_error=1:detect_leaks=1"
        LSAN_OPTIONS="suppressions=$root/tests/lsan.supp:print_suppressions=0"
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$abs_build/reports/ubsan"
        export ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
        echo "run-tests: sanitizer reports go to $build/reports/"
        ;;
    esac
}

# The first number before $2 ("passed", "failed", ...) on the line $1, or 0.
count_of() {
    n=$(printf '%s\n' "$1" | grep -o "[0-9][0-9]* $2" | head -n 1 | cut -d' ' -f1)
    echo "${n:-0}"
}

run_criterion() {
    bin=$1
    if [ ! -x "$bin" ]; then
        echo "run-tests: $bin: no such test program" >&2
        failed=$((failed + 1))
        return
    fi
    echo "run-tests: $bin"
    "$bin" >"$out" 2>&1
    status=$?
    cat "$out"
    line=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | grep 'Synthesis: Tested:' | tail -n 1)
    if [ -z "$line" ]; then
        echo "run-tests: $bin exited with status $status without a criterion summary" >&2
        failed=$((failed + 1))
        return
    fi
    p=$(printf '%s\n' "$line" | sed -n 's/.*Passing: *\([0-9]*\).*/\1/p')
    f=$(printf '%s\n' "$line" | sed -n 's/.*Failing: *\([0-9]*\).*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    # Criterion reports a crash in .init/.fini only as a warning; it is a failure.
    crashes=$(grep -c 'crashed during its setup or teardown' "$out")
    if [ "$crashes" -gt 0 ]; then
        echo "run-tests: $bin: $crashes test(s) crashed in setup or teardown" >&2
        failed=$((failed + crashes))
    fi
    if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        echo "run-tests: $bin exited with status $status although every test passed" \
            "(a sanitizer report at exit?)" >&2
        failed=$((failed + 1))
    fi
}

case "$mode" in
unit | integration)
    sanitizer_env
    if [ "$mode" = integration ]; then
        GUARDIAND=$abs_build/bin/guardiand
        export GUARDIAND
        if [ ! -x "$GUARDIAND" ]; then
            echo "run-tests: $GUARDIAND does not exist; build it first" >&2
            failed=$((failed + 1))
            summary
        fi
    fi
    [ $# -gt 0 ] || echo "run-tests: no $mode test programs"
    for bin in "$@"; do
        run_criterion "$bin"
    done
    summary
    ;;
python)
    sanitizer_env
    GUARDIAND=$abs_build/bin/guardiand
    export GUARDIAND
    if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import pytest, epics' 2>/dev/null; then
        echo "run-tests: /usr/bin/python3 needs pytest and pyepics" \
            "(apt-get install python3-pytest python3-pyepics)" >&2
        failed=$((failed + 1))
        summary
    fi
    echo "run-tests: /usr/bin/python3 -m pytest -q tests/integration (GUARDIAND=$GUARDIAND)"
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration >"$out" 2>&1
    status=$?
    cat "$out"
    line=$(grep -E '[0-9]+ (passed|failed|errors?)' "$out" | tail -n 1)
    p=$(count_of "$line" passed)
    f=$(($(count_of "$line" failed) + $(count_of "$line" error)))
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "run-tests: pytest exited with status $status" >&2
        failed=$((failed + 1))
    fi
    summary
    ;;
sanitizer-reports)
    dir=$abs_build/reports
    if [ -d "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        for f in "$dir"/*; do
            echo "==== $f"
            head -n 200 "$f"
        done
        echo "run-tests: sanitizer reports in $build/reports/ (above)" >&2
        failed=1
    else
        echo "run-tests: no sanitizer reports in $build/reports/"
        passed=1
    fi
    summary
    ;;
fuzz)
    [ $# -ge 1 ] || usage
    runs=$1
    shift
    for t in "$@"; do
        if sh tools/fuzz.sh regress "$build" "$runs" "$t"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    summary
    ;;
*)
    usage
    ;;
esac
