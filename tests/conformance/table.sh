#!/usr/bin/env bash
# tests/conformance/table.sh FLAVOR=RUNNER-OUTPUT...: the docs/flavors.md conformance table from
# the TAP output of tests/integration/conformance_FLAVOR.sh runs (one row per flavor: pass, skip
# with the reason, FAIL, for each of DESIGN.md §8's 12 checks).
echo "| flavor | 1 exit codes | 2 logs | 3 inputs/outputs | 4 Ctrl-C | 5 timeout, OOM | 6 cannot start | 7 refused | 8 dry-run | 9 detach | 10 forged handle | 11 API down | 12 no credential |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for a in "$@"; do
    python3 - "${a%%=*}" "${a#*=}" <<'PY'
import re, sys
flavor, path = sys.argv[1], sys.argv[2]
res = {n: [] for n in range(1, 13)}
for line in open(path):
    m = re.match(r'(not ok|ok) \d+ - (\d+): (.*)', line)
    if not m:
        continue
    n = int(m.group(2))
    if m.group(1) == 'not ok':
        res[n].append('FAIL')
    elif '# SKIP' in m.group(3):
        what, why = m.group(3).split(' # SKIP ', 1)
        res[n].append('skip %s: %s' % (what, why))
    else:
        res[n].append('pass')
def cell(v):
    if not v:
        return 'not run'
    if 'FAIL' in v:
        return 'FAIL'
    skips = [s[5:] for s in v if s.startswith('skip')]
    passed = v.count('pass')
    if skips and passed:
        return '%d pass; skip %s' % (passed, '; '.join(skips))
    if skips:
        return 'skip (%s)' % '; '.join(skips)
    return 'pass (%d)' % passed
print('| %s | %s |' % (flavor, ' | '.join(cell(res[n]) for n in range(1, 13))))
PY
done
