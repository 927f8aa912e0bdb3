#!/usr/bin/env bash
# On a machine with NVIDIA GPUs: `stepop gpu check` and `smoke` against nvidia-smi (count, names,
# UUIDs, memory, PCI bus ids) and, when installed, nvbandwidth on the same cards. Figures go to
# build/test-logs/gpu-figures.txt for docs/gpu.md. Skips where there is no GPU.
. "$(dirname "$0")/../lib.sh"

command -v nvidia-smi >/dev/null || skip_all "no nvidia-smi: not a GPU machine"
nvidia-smi -L >/dev/null 2>&1 || skip_all "nvidia-smi finds no GPU"
[ "$("$STEPOP" version --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["libraries"]["cuda_runtime"])')" != none ] ||
    skip_all "this stepop was built without CUDA"
FIG=$ROOT/build/test-logs/gpu-figures.txt
mkdir -p "$(dirname "$FIG")"
ms() { echo $(($(date +%s%N) / 1000000)); }

nvidia-smi --query-gpu=index,name,uuid,memory.total,pci.bus_id --format=csv,noheader,nounits >"$T/smi.csv"
nvidia-smi -L >"$T/smi-L.txt"

t0=$(ms)
expect_rc 0 "gpu check passes" "$STEPOP" gpu check --json
check_ms=$(($(ms) - t0))
cp "$T/out" "$T/check.json"
card=$(python3 -c "import json; print(json.load(open('$T/check.json'))['devices'][0]['name'])")
{
    echo "card: $card ($(wc -l <"$T/smi.csv") GPU(s)), driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
    echo "gpu check wall: $check_ms ms"
} >"$FIG"
python3 - "$T/check.json" "$T/smi.csv" "$T/smi-L.txt" >"$T/cmp.txt" 2>&1 <<'PY'
import csv, json, os, re, sys
d = json.load(open(sys.argv[1]))
smi = {r[2].strip(): r for r in csv.reader(open(sys.argv[2]), skipinitialspace=True)}
mig_uuids = set(re.findall(r'MIG-[0-9a-f-]+', open(sys.argv[3]).read()))
bad = []
if 'CUDA_VISIBLE_DEVICES' not in os.environ and not any(x['mig'] for x in d['devices']) and len(d['devices']) != len(smi):
    bad.append('count: stepop %d, nvidia-smi %d' % (len(d['devices']), len(smi)))
for x in d['devices']:
    print('device %d: %s %s cc %s, %.0f MiB, context %.0f ms' % (x['index'], x['name'], x['uuid'], x['compute_capability'], x['memory_total'] / 2**20, x['context_ms']))
    if x['mig']:
        if x['uuid'] not in mig_uuids:
            bad.append('MIG UUID %s not in nvidia-smi -L' % x['uuid'])
        continue
    r = smi.get(x['uuid'])
    if not r:
        bad.append('UUID %s not listed by nvidia-smi' % x['uuid'])
        continue
    if r[1].strip() != x['name']:
        bad.append('name %r vs nvidia-smi %r' % (x['name'], r[1]))
    mib = float(r[3])
    if abs(x['memory_total'] / 2**20 - mib) > 0.02 * mib:
        bad.append('memory %.0f MiB vs nvidia-smi %.0f MiB' % (x['memory_total'] / 2**20, mib))
    if r[4].strip().upper() != x['pci_bus_id']:
        bad.append('pci %s vs nvidia-smi %s' % (x['pci_bus_id'], r[4]))
for b in bad:
    print('MISMATCH ' + b)
sys.exit(1 if bad else 0)
PY
rc=$?
if [ $rc = 0 ]; then ok "devices agree with nvidia-smi (count, names, UUIDs, memory, PCI)"; else not_ok "devices agree with nvidia-smi"; fi
diag <"$T/cmp.txt"
cat "$T/cmp.txt" >>"$FIG"
case "$card" in
*H100*) check "gpu check under 2 s on an H100 (took $check_ms ms)" test "$check_ms" -lt 2000 ;;
*) ok "# SKIP the 2 s target is set for H100 (took $check_ms ms on $card)" ;;
esac

expect_rc 0 "gpu smoke --level 2 passes" "$STEPOP" gpu smoke --json --level 2
cp "$T/out" "$T/smoke.json"
python3 - "$T/smoke.json" >"$T/figs.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for x in d['devices']:
    s = x['smoke']; bw = s['bandwidth']; mt = s['memory_test']
    print('device %d %s: h2d %.1f GB/s, d2h %.1f GB/s, dtod %.1f GB/s (median of %d x %d MiB); memory test %.1f GiB, %d errors; vectorAdd %s' % (
        x['index'], x['name'], bw['h2d']['median_gbps'], bw['d2h']['median_gbps'], bw['dtod']['median_gbps'],
        bw['repeats'], bw['buffer_bytes'] >> 20, mt['bytes'] / 2**30, mt['errors'], 'ok' if s['vector_add']['ok'] else 'WRONG'))
PY
diag <"$T/figs.txt"
cat "$T/figs.txt" >>"$FIG"
check "every device has bandwidth figures and a clean memory test" python3 -c "
import json; d=json.load(open('$T/smoke.json'))
assert all(x['smoke']['bandwidth'][k]['median_gbps'] > 0 for x in d['devices'] for k in ('h2d','d2h','dtod'))
assert all(x['smoke']['memory_test']['errors'] == 0 and x['smoke']['vector_add']['ok'] for x in d['devices'])"
expect_rc 11 "an unreachable threshold gives exit 11 (below_threshold)" "$STEPOP" gpu smoke --level 2 --min-h2d-gbps 100000
err_has "below_threshold" "classified below_threshold"

expect_rc 0 "gpu smoke --level 3 --seconds 10 passes" "$STEPOP" gpu smoke --json --level 3 --seconds 10
check "the stress result is exact on every device" python3 -c "
import json; d=json.load(open('$T/out'))
assert all(x['smoke']['stress']['mismatches'] == 0 and x['smoke']['stress']['iterations'] > 0 for x in d['devices'])"
python3 -c "
import json; d=json.load(open('$T/out'))
for x in d['devices']: print('device %d stress: %.1f s, %.0f Gupdates/s' % (x['index'], x['smoke']['stress']['seconds'], x['smoke']['stress']['gupdates_per_s']))" >>"$FIG"

nvb=$(command -v nvbandwidth || ls /usr/local/bin/nvbandwidth /opt/nvbandwidth/nvbandwidth 2>/dev/null | head -1)
if [ -n "$nvb" ]; then
    n=$(python3 -c "import json; print(len(json.load(open('$T/smoke.json'))['devices']))")
    for tc in host_to_device_memcpy_ce device_to_host_memcpy_ce device_local_copy; do
        "$nvb" -t "$tc" >"$T/nvb-$tc.txt" 2>&1
        # nvbandwidth's SUM line adds every GPU's figure; per device is SUM / n.
        v=$(awk -v n="$n" '$1 == "SUM" { printf "%.1f", $3 / n }' "$T/nvb-$tc.txt")
        echo "nvbandwidth $tc: ${v:-?} GB/s per device" >>"$FIG"
        eval "nvb_$tc=\${v:-0}"
    done
    cmp_bw() { # KEY NVB-FIGURE SHARE
        python3 -c "
import json, sys; d=json.load(open('$T/smoke.json')); want=$2*$3
low=[x['index'] for x in d['devices'] if x['smoke']['bandwidth']['$1']['median_gbps'] < want]
print('$1 vs nvbandwidth %.1f GB/s x $3' % $2); sys.exit(1 if low or $2 <= 0 else 0)"
    }
    check "pinned h2d at least 90% of nvbandwidth" cmp_bw h2d "$nvb_host_to_device_memcpy_ce" 0.9
    check "pinned d2h at least 90% of nvbandwidth" cmp_bw d2h "$nvb_device_to_host_memcpy_ce" 0.9
    check "on-device copy at least 80% of nvbandwidth device_local_copy" cmp_bw dtod "$nvb_device_local_copy" 0.8
else
    ok "# SKIP nvbandwidth is not installed: no reference bandwidth"
fi
diag <"$FIG"
done_testing
