#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the local flavor (tests/conformance/suite.sh, beds/local.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/local.sh"
conformance_main
