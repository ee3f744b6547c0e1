#!/bin/sh
# fuzz.sh — run guardiand's libFuzzer targets (tests/fuzz/; README, "Fuzzing").
#
#   sh tools/fuzz.sh run FUZZ_BUILD SECONDS TARGET...   fuzz each target for SECONDS, in turn
#   sh tools/fuzz.sh regress FUZZ_BUILD RUNS TARGET     one target's regression (make test)
#
# What a target reads: tests/fuzz/corpus/TARGET (seeds, from real traffic:
# tools/gen-fuzz-corpus.py), tests/fuzz/regress/TARGET (every crash found,
# kept as a test) and, when fuzzing, FUZZ_BUILD/corpus/TARGET, where the
# inputs earlier runs found are kept (new ones go there, never into the
# source tree). tests/fuzz/TARGET.dict is given to libFuzzer when it exists.
# Crash, leak, timeout and out-of-memory reproducers are written to
# FUZZ_BUILD/artifacts/TARGET/; copy each to tests/fuzz/regress/TARGET/ and
# it is replayed by every regression run from then on.
#
# run: one target at a time (nice 10), each for SECONDS; prints per target
# the executions, executions per second and coverage (cov: edges, ft:
# features) at the end, or the crash. regress: the seeds and regression
# inputs once each, then RUNS mutations with a fixed seed. The full output
# is in FUZZ_BUILD/logs/TARGET.log. The exit status is non-zero if any target
# crashed (or could not run).
set -u

usage() {
    echo "usage: sh tools/fuzz.sh run FUZZ_BUILD SECONDS TARGET... |" \
        "regress FUZZ_BUILD RUNS TARGET" >&2
    exit 2
}

[ $# -ge 4 ] || usage
mode=$1
build=$2
amount=$3
shift 3

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2

# Files in the given folders (that exist).
count_files() {
    n=0
    for d in "$@"; do
        [ -d "$d" ] && n=$((n + $(find "$d" -type f | wc -l)))
    done
    echo "$n"
}

# The last libFuzzer status line of log $1 ("#N DONE cov: ... ft: ..."), and
# one of its fields ("cov:", "ft:", "corp:", "exec/s:").
last_status() { grep -E '^#[0-9]+' "$1" | tail -n 1; }
field() { printf '%s\n' "$1" | sed -n "s/.* $2 \([^ ]*\).*/\1/p"; }

# fuzz_one TARGET MODE AMOUNT: run it; 0 if no crash.
fuzz_one() {
    t=$1
    bin=$build/bin/$t
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin: not built (make fuzz-build)" >&2
        return 1
    fi
    mkdir -p "$build/artifacts/$t" "$build/logs"
    log=$build/logs/$t.log
    dict=""
    [ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
    seeds=""
    for d in "tests/fuzz/regress/$t" "tests/fuzz/corpus/$t"; do
        [ -d "$d" ] && seeds="$seeds $d"
    done
    # The targets log to stdout and stderr (CA errors, refused control
    # requests): -close_fd_mask=3 keeps libFuzzer's own lines and any
    # sanitizer report. -timeout: an input that runs 10 s is a finding too.
    common="-close_fd_mask=3 -timeout=10 -print_final_stats=1 -artifact_prefix=$build/artifacts/$t/"
    # ctl: commands are short lines, and an input that changes anything
    # costs a restart of the daemon it talks to; inputs of up to 512 bytes
    # (several commands) run four times as many executions a second as
    # libFuzzer's default of 4096, at the same coverage.
    [ "$t" = ctl ] && common="$common -max_len=512"
    if [ "$2" = run ]; then
        work=$build/corpus/$t
        mkdir -p "$work"
        # shellcheck disable=SC2086
        nice -n 10 "$bin" $common $dict -max_total_time="$3" "$work" $seeds >"$log" 2>&1
    else
        # A scratch folder first: libFuzzer writes what it finds there.
        work=$build/regress-scratch/$t
        rm -rf "$work" && mkdir -p "$work"
        # shellcheck disable=SC2086
        runs=$(($(count_files $seeds) + $3))
        # shellcheck disable=SC2086
        "$bin" $common $dict -seed=1 -runs="$runs" "$work" $seeds >"$log" 2>&1
    fi
    status=$?
    line=$(last_status "$log")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    if [ "$status" -eq 0 ]; then
        echo "fuzz: $t: ${execs:-?} runs (${rate:-?} exec/s), cov $(field "$line" cov:)," \
            "ft $(field "$line" ft:), corpus $(field "$line" corp:); no crash"
        return 0
    fi
    echo "fuzz: $t: CRASH (exit status $status) after ${execs:-?} runs; from $log:" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|ctl fuzz|config fuzz|fuzz_ca)' "$log" \
        | head -n 5 >&2
    grep -E '^ +#[0-9]+ ' "$log" | head -n 12 >&2
    grep -E 'Test unit written to' "$log" >&2
    return 1
}

case "$mode" in
run)
    failed=0
    for t in "$@"; do
        echo "fuzz: $t for $amount s (log: $build/logs/$t.log)"
        fuzz_one "$t" run "$amount" || failed=$((failed + 1))
    done
    [ "$failed" -eq 0 ] || echo "fuzz: $failed target(s) crashed; reproducers in $build/artifacts/" >&2
    [ "$failed" -eq 0 ]
    ;;
regress)
    [ $# -eq 1 ] || usage
    fuzz_one "$1" regress "$amount"
    ;;
*)
    usage
    ;;
esac
