#!/bin/sh
# A real round trip on the embedded default file store: pack a small "model" directory, upload
# it as tar.zst, download and unpack it elsewhere, and compare.
set -eu
stepop=${STEPOP:-build/stepop}
data=${XDG_DATA_HOME:-$HOME/.local/share}/stepop
work=$(mktemp -d "${TMPDIR:-/tmp}/stepop-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/model/checkpoints" "$work/model/empty"
printf '{"lr": 0.001, "epochs": 3}\n' >"$work/model/config.json"
head -c 8388608 /dev/urandom >"$work/model/checkpoints/weights.bin"
ln -s checkpoints/weights.bin "$work/model/latest"
uri="file://$data/demo/model.tar.zst"
echo "== put $work/model -> $uri"
"$stepop" artifact put "$work/model" "$uri"
echo "== get $uri -> $work/restored (unpack)"
"$stepop" artifact get "$uri" "$work/restored" --unpack
diff -r --no-dereference "$work/model" "$work/restored"
echo "== identical: $(find "$work/restored" | wc -l) paths restored"
