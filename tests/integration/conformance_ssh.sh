#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the ssh example plugin against a real sshd
# (tests/conformance/suite.sh, beds/ssh.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/ssh.sh"
conformance_main
