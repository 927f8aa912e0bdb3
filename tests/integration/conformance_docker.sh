#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the docker flavor against Podman (tests/conformance/suite.sh,
# beds/docker.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/docker.sh"
start_podman || { not_ok "podman starts"; done_testing; }
conformance_main
