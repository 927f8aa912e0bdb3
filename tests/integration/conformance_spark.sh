#!/usr/bin/env bash
# DESIGN.md §8's conformance list on the spark flavor in cluster mode against the Kubernetes test
# bed, with stand-ins for spark-submit and Spark's entrypoint (tests/conformance/beds/spark.sh).
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/conformance/suite.sh"
. "$ROOT/tests/conformance/beds/spark.sh"
start_kbed 1
conformance_main
