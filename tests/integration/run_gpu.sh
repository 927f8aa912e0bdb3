#!/usr/bin/env bash
# The entrypoint's GPU preflight: a step that needs a GPU stops in checking_gpu, before any input
# is downloaded, with reason gpu_unavailable and the classification in the message.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    skip_all "a GPU is present here: the no-GPU preflight path cannot be shown (tests/gpu/ covers the GPU)"
fi
export STEPOP_LOG_INTERVAL=200ms
start_faulty || { not_ok "faulty server starts"; done_testing; }
printf 'data\n' >"$FAULTY_ROOT/data.txt"
store=$T/store
manifest "$T/gpu.json" "file://$store/runs/g1" "\"command\":[\"touch\",\"$T/ran\"],
  \"inputs\":[{\"name\":\"data\",\"uri\":\"$FAULTY_URL/data.txt\"}],
  \"gpu\":{\"required\":true,\"min_devices\":1,\"min_compute_capability\":\"8.0\"}"
expect_rc 69 "gpu.required without a usable GPU exits 69" "$STEPOP" run --manifest "$T/gpu.json"
s=$store/runs/g1/status.json
is_eq "status: failed, gpu_unavailable, system kind" "$(jq_py "$s" "d['phase'], d['reason'], d['reason_kind']")" \
    "failed gpu_unavailable system"
check "the message carries a classification and a hint" python3 -c "
import json; m = json.load(open('$s'))['message']
assert any(c in m for c in ('no_driver', 'cuda_not_built', 'stub_library', 'no_device')), m
assert 'hint' in m, m"
check "the GPU summary is in status.json" python3 -c "
import json; g = json.load(open('$s'))['gpu']
assert g['ok'] is False and 'driver_version' in g and 'devices' in g, g"
is_eq "the HTTP server saw no input request" "$(faulty_log | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" 0
check "the step never ran" test ! -e "$T/ran"
check "no fetching phase was entered" test "$(jq_py "$s" "'fetching' in d['phases']")" = False

manifest "$T/soft.json" "file://$store/runs/g2" "\"command\":[\"cat\",\"data\"],\"workdir\":\"$T/w\",
  \"inputs\":[{\"name\":\"data\",\"uri\":\"$FAULTY_URL/data.txt\"}],\"resources\":{\"gpus\":1}"
expect_rc 0 "resources.gpus without gpu.required: the step still runs" "$STEPOP" run --manifest "$T/soft.json"
err_has "GPU check" "with a warning about the GPU"
check "and the GPU summary is recorded" python3 -c "import json; assert json.load(open('$store/runs/g2/status.json'))['gpu']"
done_testing
