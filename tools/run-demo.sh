#!/bin/sh
# run-demo.sh — `make run`: the demo plant (guardsim) and guardiand on etc/demo.ini.
#
#   sh tools/run-demo.sh BUILD
#
# 1. BUILD/bin/guardsim serves the demo's plant channels on CA port 5066 (the suspensions'
#    watchdogs trip at random, 6 times an hour each, and reset themselves 30 s later). Its
#    trip and reset lines come to the terminal; its other messages go to BUILD/guardsim-demo.log.
# 2. Once guardsim's ready line is there (or it has failed: its message, exit 1), guardiand
#    runs on the default port 5064, its nodes reaching the plant over CA through libca:
#    127.0.0.1:5066 is added to EPICS_CA_ADDR_LIST, and when the caller set neither
#    EPICS_CA_ADDR_LIST nor EPICS_CA_AUTO_ADDR_LIST, EPICS_CA_AUTO_ADDR_LIST=NO too (nodes
#    then search guardsim only); a caller's own settings are kept.
# 3. Ctrl-C (SIGINT), SIGTERM or SIGHUP stop both. guardsim is stopped whenever guardiand
#    ends, and the exit status is guardiand's (a signal before guardiand started: 128 + it).
#
# Signals: the traps pass a signal on to guardiand at once (SIGTERM), and every wait that a
# signal interrupts is resumed, so a signal at any moment ends both processes; the EXIT trap
# stops whatever is still running if the script ends any other way.
set -u

usage() {
    echo "usage: sh tools/run-demo.sh BUILD" >&2
    exit 2
}
[ $# -eq 1 ] || usage
build=$1
config=etc/demo.ini
port=5066
sim=$build/bin/guardsim
daemon=$build/bin/guardiand
log=$build/guardsim-demo.log

for bin in "$sim" "$daemon"; do
    if [ ! -x "$bin" ]; then
        echo "run-demo: $bin is not built (make BUILD=$build)" >&2
        exit 1
    fi
done

sim_pid=
daemon_pid=
got=      # the status a signal asks for (128 + its number), once one came
signals=0 # how many came: a wait they interrupted is waited again

on_signal() {
    got=$1
    signals=$((signals + 1))
    [ -z "$daemon_pid" ] || kill -TERM "$daemon_pid" 2>/dev/null
}
trap 'on_signal 129' HUP
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

# wait_for PID: its exit status in $status, however many signals interrupt the wait. Waiting
# again for a process already reported gives its status again (dash) or 127 (others).
wait_for() {
    status=127
    while :; do
        before=$signals
        wait "$1"
        s=$?
        [ "$s" -eq 127 ] || status=$s
        [ "$signals" != "$before" ] || return 0
    done
}

stop_sim() {
    [ -n "$sim_pid" ] || return 0
    kill -TERM "$sim_pid" 2>/dev/null
    wait_for "$sim_pid"
    sim_pid=
    if [ "$status" -ne 0 ]; then
        echo "run-demo: guardsim ended with status $status; the end of $log:" >&2
        tail -n 20 "$log" >&2
    fi
}

cleanup() {
    [ -z "$daemon_pid" ] || { kill -TERM "$daemon_pid" 2>/dev/null; wait_for "$daemon_pid"; }
    stop_sim
}
trap 'code=$?; cleanup; exit $code' EXIT

mkdir -p build/medm # the daemon's MEDM screens (medm_dir in etc/demo.ini)
"$sim" --config "$config" --port "$port" --trip-rate 6 --trip-reset 30 2>"$log" </dev/null &
sim_pid=$!

# Its ready line, polled: guardsim starts in well under a second, even under the sanitizers.
tries=0
until grep -q '^guardsim: ready:' "$log" 2>/dev/null; do
    [ -z "$got" ] || exit "$got"
    if ! kill -0 "$sim_pid" 2>/dev/null; then
        wait_for "$sim_pid"
        sim_pid=
        echo "run-demo: guardsim exited with status $status before it was ready:" >&2
        cat "$log" >&2
        exit 1
    fi
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then
        echo "run-demo: guardsim not ready after 30 s:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
grep '^guardsim: ready:' "$log" >&2
echo "run-demo: guardsim's other messages go to $log" >&2

if [ -z "${EPICS_CA_ADDR_LIST+set}" ] && [ -z "${EPICS_CA_AUTO_ADDR_LIST+set}" ]; then
    EPICS_CA_AUTO_ADDR_LIST=NO
    export EPICS_CA_AUTO_ADDR_LIST
fi
case " ${EPICS_CA_ADDR_LIST:-} " in
*" 127.0.0.1:$port "*) ;;
*) EPICS_CA_ADDR_LIST="${EPICS_CA_ADDR_LIST:+$EPICS_CA_ADDR_LIST }127.0.0.1:$port" ;;
esac
export EPICS_CA_ADDR_LIST

[ -z "$got" ] || exit "$got"
"$daemon" --config "$config" </dev/null &
daemon_pid=$!
# A signal between the start and the line above found no PID to pass on to.
[ -z "$got" ] || kill -TERM "$daemon_pid" 2>/dev/null
wait_for "$daemon_pid"
daemon_pid=
code=$status
stop_sim
exit "$code"
