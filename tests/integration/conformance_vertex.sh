#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the vertex flavor against its fake (tests/conformance/suite.sh,
# beds/vertex.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/vertex.sh"
start_podman || { not_ok "podman starts"; done_testing; }
conformance_main
