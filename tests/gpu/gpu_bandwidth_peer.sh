#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and PyTorch: `gpu smoke --level 2` copy bandwidth against
# PyTorch's own copies on the same card (pinned host <-> device, device to device, 256 MiB, CUDA
# events, median of 9 after a warm-up), alternating three times. The peer where nvbandwidth is
# not installed. Skips elsewhere.
. "$(dirname "$0")/../lib.sh"

command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || skip_all "no NVIDIA GPU here"
python3 -c "import torch; assert torch.cuda.is_available()" 2>/dev/null || skip_all "no PyTorch with CUDA here"
cat >"$T/peer.py" <<'PY'
import statistics, torch
n = 256 << 20
h = torch.empty(n, dtype=torch.uint8, pin_memory=True)
h2 = torch.empty(n, dtype=torch.uint8, pin_memory=True)
d = torch.empty(n, dtype=torch.uint8, device="cuda")
d2 = torch.empty_like(d)
def gbps(f, reps=9):
    r = []
    for _ in range(reps + 1):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); f(); e.record(); torch.cuda.synchronize(); r.append(s.elapsed_time(e))
    return n / (statistics.median(r[1:]) / 1000) / 1e9
print(gbps(lambda: d.copy_(h, non_blocking=True)), gbps(lambda: h2.copy_(d, non_blocking=True)), gbps(lambda: d2.copy_(d)))
PY
: >"$T/stepop.txt"
: >"$T/torch.txt"
for round in 1 2 3; do
    "$STEPOP" gpu smoke --json --level 2 --memory-share 0.05 >"$T/smoke.json" || { not_ok "gpu smoke --level 2 (round $round)"; done_testing; }
    python3 -c "
import json; b = json.load(open('$T/smoke.json'))['devices'][0]['smoke']['bandwidth']
print(b['h2d']['median_gbps'], b['d2h']['median_gbps'], b['dtod']['median_gbps'])" >>"$T/stepop.txt"
    python3 "$T/peer.py" >>"$T/torch.txt" || { not_ok "the PyTorch peer runs"; done_testing; }
done
ok "three alternating rounds of stepop and PyTorch copies"
python3 - "$T/stepop.txt" "$T/torch.txt" >"$T/cmp.txt" <<'PY'
import statistics, sys
cols = lambda f: list(zip(*[map(float, l.split()) for l in open(f)]))
s, t = cols(sys.argv[1]), cols(sys.argv[2])
for name, a, b in zip(("h2d", "d2h", "dtod"), s, t):
    print("%s %.1f %.1f %.3f" % (name, statistics.median(a), statistics.median(b), statistics.median(a) / statistics.median(b)))
PY
while read -r name mine peer share; do
    want=0.9
    [ "$name" = dtod ] && want=0.8
    echo "$name: stepop $mine GB/s, PyTorch $peer GB/s ($share)" | diag
    check "$name at least $want of PyTorch's on the same card" python3 -c "import sys; sys.exit(0 if $share >= $want else 1)"
done <"$T/cmp.txt"
done_testing
