#!/usr/bin/env bash
# A full run with its prefix on Azure Blob: manifest, inputs, outputs, status and logs all in
# az://, on Azurite in strict mode (every Shared Key signature checked) through the logging proxy.
. "$(dirname "$0")/../lib.sh"
azurite_available || skip_all "node, azurite or @azure/storage-blob is not installed (make deps)"
start_azurite --skipApiVersionCheck || { not_ok "Azurite starts"; done_testing; }
start_azure_proxy || { not_ok "the proxy starts"; done_testing; }
check "the official client creates the container" azblob mkcontainer runs
export AZURE_STORAGE_CONNECTION_STRING=$AZPROXY_CS
export STEPOP_LOG_INTERVAL=200ms STEPOP_AZURE_PUT_THRESHOLD=4MiB STEPOP_AZURE_BLOCK_SIZE=4MiB
make_tree "$T/data" 8
"$STEPOP" artifact put "$T/data" az://runs/datasets/d1.tar.zst --json >"$T/put.json" 2>/dev/null
sum=$(jq_py "$T/put.json" "d['sha256']")
run=az://runs/r1
cat >"$T/step.sh" <<'SH'
echo "step sees $(ls "$STEPOP_INPUT_DATA" | wc -l) entries"
mkdir -p "$STEPOP_OUTPUT_MODEL"
head -c 12000000 /dev/urandom >"$STEPOP_OUTPUT_MODEL/weights.bin"
echo done >&2
SH
manifest "$T/m.json" "$run" "\"command\":[\"sh\",\"$T/step.sh\"],\"workdir\":\"$T/w\",
  \"inputs\":[{\"name\":\"data\",\"uri\":\"az://runs/datasets/d1.tar.zst\",\"unpack\":true,\"sha256\":\"$sum\"}],
  \"outputs\":[{\"name\":\"model\",\"path\":\"out/model\"}]"
"$STEPOP" artifact put "$T/m.json" "$run/manifest.json" >/dev/null 2>&1
expect_rc 0 "stepop run with the manifest, inputs, outputs, status and logs on Azure Blob" \
    env STEPOP_MANIFEST="$run/manifest.json" "$STEPOP" run
out_has "step sees" "the step read its unpacked input"
"$STEPOP" artifact get "$run/status.json" "$T/status.json" >/dev/null 2>&1
is_eq "status.json in Azure Blob says succeeded" "$(jq_py "$T/status.json" "d['phase']")" succeeded
"$STEPOP" artifact get "$run/outputs.json" "$T/outputs.json" >/dev/null 2>&1
check "outputs.json lists the model" test "$(jq_py "$T/outputs.json" "d['outputs'][0]['name']")" = model
osum=$(jq_py "$T/outputs.json" "d['outputs'][0]['sha256']")
expect_rc 0 "the 12 MB output (blocks) comes back with the recorded sha256" \
    "$STEPOP" artifact get "$run/outputs/model.tar.zst" "$T/model" --unpack --sha256 "$osum"
check "and holds the weights" cmp "$T/model/weights.bin" "$T/w/out/model/weights.bin"
check "the official client reads the output too" azblob get runs r1/outputs/model.tar.zst "$T/model-js"
check "... the same bytes" test "$(sha256sum <"$T/model-js" | cut -d' ' -f1)" = "$osum"
"$STEPOP" logs "$run" >"$T/log0" 2>/dev/null
check "the logs are in Azure Blob" grep -q 'step sees' "$T/log0"
check "every request went through the proxy" test "$(azproxy_count True)" -gt 20
is_eq "none was refused by Azurite's signature check" "$(azproxy_count "e['status'] == 403")" 0
check "the output went out as Put Block + Put Block List" test "$(azproxy_count "e['query']=='comp=blocklist'")" -ge 1
done_testing
