#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the Slurm example plugin against a real one-node Slurm
# (tests/conformance/suite.sh, beds/slurm.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/slurm.sh"
conformance_main
