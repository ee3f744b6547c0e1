#!/bin/sh
# deps.sh — check for the Debian packages guardiand needs; as root, install the
# missing ones (non-interactively), otherwise print the command to run.
# README.md says why each package is there.
set -eu

PACKAGES="gcc make pkg-config libev-dev libsqlite3-dev libcriterion-dev uthash-dev libinih-dev libjansson-dev \
libca4.13.5 libca-dev libcom-dev python3 python3-pyepics python3-pytest \
clang libclang-rt-14-dev libfuzzer-14-dev"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    echo "deps: all packages present"
    exit 0
fi

echo "deps: missing:$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root:  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
