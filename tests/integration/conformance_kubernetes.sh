#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the kubernetes flavor against the Kubernetes test bed
# (tests/conformance/suite.sh, beds/kubernetes.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/kubernetes.sh"
start_kbed 1
conformance_main
