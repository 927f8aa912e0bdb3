#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the modal flavor against its fake (tests/conformance/suite.sh,
# beds/modal.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/modal.sh"
start_podman || { not_ok "podman starts"; done_testing; }
conformance_main
