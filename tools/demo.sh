#!/bin/sh
# A real step, end to end, on the embedded default (local flavor, file store under
# $XDG_DATA_HOME/stepop, no configuration): an input directory is packed and uploaded, the step
# fetches and unpacks it, "trains" on it, and its output is packed, uploaded and fetched back.
set -eu
stepop=${STEPOP:-$(pwd)/build/stepop}
work=$(mktemp -d "${TMPDIR:-/tmp}/stepop-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
store=${XDG_DATA_HOME:-$HOME/.local/share}/stepop

mkdir -p "$work/dataset/train"
for i in 1 2 3; do
    head -c 1048576 /dev/urandom | od -An -tx1 | head -2000 >"$work/dataset/train/shard-$i.txt"
done
echo "== upload the dataset to the store"
"$stepop" artifact put "$work/dataset" "file://$store/datasets/demo.tar.zst"

cat >"$work/train.sh" <<'SH'
set -eu
echo "training on $(ls "$STEPOP_INPUT_DATASET/train" | wc -l) shards"
mkdir -p "$STEPOP_OUTPUT_MODEL"
cat "$STEPOP_INPUT_DATASET"/train/*.txt | sha256sum | cut -c1-64 >"$STEPOP_OUTPUT_MODEL/weights.txt"
wc -l "$STEPOP_INPUT_DATASET"/train/*.txt | tail -1 >"$STEPOP_OUTPUT_MODEL/metrics.txt"
echo "model written"
SH
echo "== stepop submit (local flavor, embedded file store)"
"$stepop" submit --input dataset="file://$store/datasets/demo.tar.zst@dataset" \
    --output model=model@tar.zst --json -- sh "$work/train.sh" >"$work/summary.json"
run=$(sed -n 's/^[[:space:]]*"run_id":[[:space:]]*"\([^"]*\)".*/\1/p' "$work/summary.json" | head -1)
echo "== stepop status $run"
"$stepop" status "$run"
echo "== fetch the model the step produced"
"$stepop" artifact get "file://$store/runs/$run/outputs/model.tar.zst" "$work/model" --unpack
cat "$work/model/metrics.txt"
expected=$(cat "$work"/dataset/train/*.txt | sha256sum | cut -c1-64)
[ "$(cat "$work/model/weights.txt")" = "$expected" ] && echo "== the step's output matches its input: OK"
