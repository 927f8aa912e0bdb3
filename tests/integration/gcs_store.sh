#!/usr/bin/env bash
# The gs:// store against firebase-tools' Cloud Storage emulator (JSON API; no authentication,
# no chunked resumable sessions: gcs_resumable.sh covers those against the protocol fake):
# put, get, stat, ls, rm through `stepop artifact`, parallel ranged reads pinned to the
# generation, the x-goog-hash check, interop with npm @google-cloud/storage both ways, and a whole
# `stepop run` with its prefix on gs://.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
[ -d "$ROOT/tests/servers/node_modules/@google-cloud/storage" ] || skip_all "@google-cloud/storage is not installed (make deps)"
start_gcs_emulator || { not_ok "the storage emulator starts"; done_testing; }
gcs_client() { node "$ROOT/tests/servers/gcs_client.js" "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

head -c 1500 /dev/urandom >"$T/small"
head -c $((20 * 1048576 + 7)) /dev/urandom >"$T/big"
make_tree "$T/tree"

# Small objects: one multipart/related request.
expect_rc 0 "put a small file" "$STEPOP" artifact put "$T/small" gs://bkt/run/small.bin --json
out_has "\"sha256\":\"$(sha "$T/small")\"" "put reports its sha256"
expect_rc 0 "stat it" "$STEPOP" artifact stat gs://bkt/run/small.bin --json
out_has '"size":1500' "stat gives its size"
expect_rc 0 "get it" "$STEPOP" artifact get gs://bkt/run/small.bin "$T/small.back"
check "the bytes came back" cmp "$T/small" "$T/small.back"
: >"$T/empty"
expect_rc 0 "an empty object goes and comes back" "$STEPOP" artifact put "$T/empty" gs://bkt/run/empty
expect_rc 0 "get the empty object" "$STEPOP" artifact get gs://bkt/run/empty "$T/empty.back"
check "it is empty" test ! -s "$T/empty.back"

# A directory as tar.gz, extracted again.
expect_rc 0 "put a directory as tar.gz" "$STEPOP" artifact put "$T/tree" gs://bkt/run/tree.tar.gz
expect_rc 0 "get it unpacked" "$STEPOP" artifact get gs://bkt/run/tree.tar.gz "$T/tree.back" --unpack
check "the tree came back" same_tree "$T/tree" "$T/tree.back"

# Large: a resumable session (the emulator takes it in one chunk: it finalises any session on
# its first PUT), then parallel ranged GETs of 1 MiB pinned to the generation.
export STEPOP_GCS_UPLOAD_THRESHOLD=4MiB STEPOP_GCS_CHUNK_SIZE=64MiB STEPOP_GCS_PART_SIZE=1MiB
expect_rc 0 "put 20 MiB through a resumable session" "$STEPOP" artifact put "$T/big" gs://bkt/run/big.bin
expect_rc 0 "get it in parallel ranges" "$STEPOP" artifact get gs://bkt/run/big.bin "$T/big.back" --sha256 "$(sha "$T/big")"
check "the bytes came back" cmp "$T/big" "$T/big.back"
# A server that finishes a session before the last chunk is caught by the size check.
expect_rc 4 "a session finished early is refused" env STEPOP_GCS_CHUNK_SIZE=4MiB "$STEPOP" artifact put "$T/big" gs://bkt/run/early.bin
err_has "finished the object" "the message says the server finished the object early"
unset STEPOP_GCS_UPLOAD_THRESHOLD STEPOP_GCS_CHUNK_SIZE

# The listing: objects and prefixes under a prefix, relative names.
expect_rc 0 "put one more level" "$STEPOP" artifact put "$T/small" gs://bkt/run/sub/inner.bin
expect_rc 0 "ls the prefix" "$STEPOP" artifact ls gs://bkt/run/
out_has "small.bin" "ls names an object"
out_has "sub/" "ls names a prefix"
check "ls does not descend into the prefix" sh -c "! grep -q inner.bin '$T/out'"
expect_rc 0 "stat a prefix" "$STEPOP" artifact stat gs://bkt/run/sub --json
out_has '"is_dir":true' "a prefix is a directory"

# Interop: the npm client reads what stepop wrote (validating crc32c and md5) ...
for f in small big; do
    rm -f "$T/by-node"
    check "@google-cloud/storage downloads stepop's $f" gcs_client download bkt "run/$f.bin" "$T/by-node"
    check "with the same bytes ($f)" cmp "$T/$f" "$T/by-node"
done
name="from-node/é x+y.bin"
check "@google-cloud/storage uploads (multipart)" gcs_client upload bkt "$name" "$T/small"
check "@google-cloud/storage uploads (resumable)" gcs_client upload bkt from-node/big.bin "$T/big" resumable
expect_rc 0 "stepop gets the node client's unicode name" "$STEPOP" artifact get "gs://bkt/$name" "$T/n1" --sha256 "$(sha "$T/small")"
expect_rc 0 "stepop gets the node client's big upload" "$STEPOP" artifact get gs://bkt/from-node/big.bin "$T/n2" --sha256 "$(sha "$T/big")"
gcs_client list bkt run/ >"$T/node.ls" 2>&1
check "the node client lists stepop's objects" grep -q "^$((20 * 1048576 + 7)) run/big.bin$" "$T/node.ls"

# x-goog-hash: bytes changed behind the server's metadata fail the download, no file is left.
# (Every object with those bytes is changed: the emulator names its files by upload, not by name.)
n=0
for f in "$GCS_EMULATOR_BLOBS"/*; do
    cmp -s "$f" "$T/small" || continue
    printf 'X' | dd of="$f" bs=1 seek=100 conv=notrunc 2>/dev/null
    n=$((n + 1))
done
check "the emulator keeps the small object's bytes in a file" test "$n" -gt 0
expect_rc 4 "a crc32c mismatch fails the download" "$STEPOP" artifact get gs://bkt/run/small.bin "$T/corrupt"
err_has "crc32c mismatch" "the message names the crc32c"
check "no file is left" test ! -e "$T/corrupt"

# A whole run with its prefix on gs://: manifest, input, output, status and logs.
export STEPOP_LOG_INTERVAL=200ms STEPOP_GCS_UPLOAD_THRESHOLD=4MiB STEPOP_GCS_CHUNK_SIZE=64MiB
make_tree "$T/data" 2
"$STEPOP" artifact put "$T/data" gs://bkt/datasets/d1.tar.zst --json >"$T/put.json" 2>/dev/null
sum=$(jq_py "$T/put.json" "d['sha256']")
run=gs://bkt/runs/r1
cat >"$T/step.sh" <<'SH'
echo "step sees $(ls "$STEPOP_INPUT_DATA" | wc -l) entries"
mkdir -p "$STEPOP_OUTPUT_MODEL"
head -c 6000000 /dev/urandom >"$STEPOP_OUTPUT_MODEL/weights.bin"
SH
manifest "$T/m.json" "$run" "\"command\":[\"sh\",\"$T/step.sh\"],\"workdir\":\"$T/w\",
  \"inputs\":[{\"name\":\"data\",\"uri\":\"gs://bkt/datasets/d1.tar.zst\",\"unpack\":true,\"sha256\":\"$sum\"}],
  \"outputs\":[{\"name\":\"model\",\"path\":\"out/model\"}]"
"$STEPOP" artifact put "$T/m.json" "$run/manifest.json" >/dev/null 2>&1
expect_rc 0 "stepop run with the manifest, input, output, status and logs on gs://" \
    env STEPOP_MANIFEST="$run/manifest.json" "$STEPOP" run
out_has "step sees" "the step read its unpacked input"
"$STEPOP" artifact get "$run/status.json" "$T/status.json" >/dev/null 2>&1
is_eq "status.json says succeeded" "$(jq_py "$T/status.json" "d['phase']")" succeeded
"$STEPOP" artifact get "$run/outputs.json" "$T/outputs.json" >/dev/null 2>&1
osum=$(jq_py "$T/outputs.json" "d['outputs'][0]['sha256']")
expect_rc 0 "the 6 MB output (a resumable session) comes back with the recorded sha256" \
    "$STEPOP" artifact get "$run/outputs/model.tar.zst" "$T/model" --unpack --sha256 "$osum"
check "and holds the weights" cmp "$T/model/weights.bin" "$T/w/out/model/weights.bin"
"$STEPOP" logs "$run" >"$T/log0" 2>/dev/null
check "the logs are in the bucket" grep -q 'step sees' "$T/log0"
unset STEPOP_GCS_UPLOAD_THRESHOLD STEPOP_GCS_CHUNK_SIZE

# rm: gone afterwards, a second rm and a stat say not found.
expect_rc 0 "rm an object" "$STEPOP" artifact rm gs://bkt/run/big.bin
expect_rc 3 "stat after rm: not found" "$STEPOP" artifact stat gs://bkt/run/big.bin
expect_rc 3 "rm again: not found" "$STEPOP" artifact rm gs://bkt/run/big.bin
expect_rc 3 "get a missing object: not found" "$STEPOP" artifact get gs://bkt/run/nothing "$T/nothing"
expect_rc 2 "a bucket name GCS refuses is a usage error" "$STEPOP" artifact stat gs://Bad_Bucket/x
done_testing
