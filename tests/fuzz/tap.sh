#!/usr/bin/env bash
# One fuzz target as one TAP result, for tests/run.sh: tests/fuzz/run.sh for FUZZ_SECONDS, which
# first replays the seed corpus (the regression inputs of past findings included).
# Usage: tests/fuzz/tap.sh build/fuzz/fuzz_NAME
set -u
cd "$(dirname "$0")/../.."
if line=$(tests/fuzz/run.sh "$1" 2>&1); then
    echo "ok 1 - $(basename "$1"): $(echo "$line" | tr -s ' ')"
else
    echo "not ok 1 - $(basename "$1") crashed"
    echo "$line" | sed 's/^/#   /'
fi
echo "1..1"
