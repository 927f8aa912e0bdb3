#!/usr/bin/env python3
"""Where `stepop run` spends its time (bench case 1, file store): reads the traces written by
bench/entry_breakdown.sh (strace -f -ttt -T of a few syscalls) and prints the median of each
phase, from the entrypoint's exec to its exit, as a Markdown table."""
import re
import statistics
import sys

LINE = re.compile(r'^(\d+)\s+(\d+\.\d+) (.*)$')
DUR = re.compile(r'<(\d+\.\d+)>$')


def events(path):
    """(pid, syscall, start, end, text) for every syscall; (pid, 'exit', t, t, '') for exits."""
    out, pending = [], {}
    for raw in open(path):
        m = LINE.match(raw.rstrip('\n'))
        if not m:
            continue
        pid, ts, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        if rest.startswith('+++ exited') or rest.startswith('+++ killed'):
            out.append((pid, 'exit', ts, ts, rest))
            continue
        if rest.startswith('---'):
            continue
        if rest.endswith('<unfinished ...>'):
            name = rest.split('(', 1)[0]
            pending[(pid, name)] = (ts, rest)
            continue
        r = re.match(r'<\.\.\. (\w+) resumed>(.*)$', rest)
        if r:
            name = r.group(1)
            start, text = pending.pop((pid, name), (ts, ''))
            out.append((pid, name, start, ts, text + r.group(2)))
            continue
        name = rest.split('(', 1)[0]
        d = DUR.search(rest)
        out.append((pid, name, ts, ts + (float(d.group(1)) if d else 0.0), rest))
    out.sort(key=lambda ev: ev[2])
    return out


def phases(path):
    ev = events(path)
    main = next(e for e in ev if e[1] == 'execve')
    pid, t0 = main[0], main[2]
    mine = [e for e in ev if e[0] == pid]
    first_thread = next(e for e in mine if e[1] == 'clone3')
    fork = next(e for e in mine if e[1] == 'clone')
    child = int(re.search(r'= (\d+)', fork[4]).group(1))
    reaped = next(e for e in mine if e[1] == 'wait4' and re.search(r'= %d\b' % child, e[4]))
    outputs_json = next(e for e in mine if e[1] == 'rename' and 'outputs.json"' in e[4])
    after = [e for e in mine if e[2] >= outputs_json[3] and e[1] in ('fsync', 'fdatasync')]
    uploaded = after[0][3] if after else outputs_json[3]
    status = [e for e in ev if e[1] == 'rename' and e[4].rstrip().split(', ')[-1].startswith('"') and
              re.search(r'/status\.json"\)', e[4])]
    last = status[-1]
    # The directory's fsync: by the status thread, or by the main thread closing its store.
    tail = [e for e in ev if e[0] in (last[0], pid) and e[2] >= last[3] and e[1] in ('fsync', 'fdatasync')]
    final = tail[0][3] if tail else last[3]
    end = next(e for e in ev if e[0] == pid and e[1] == 'exit')[2]
    syncs = [e for e in ev if e[1] in ('fsync', 'fdatasync')]
    crit = [e for e in syncs if e[2] >= reaped[3] and (e[0] == pid or e[0] == last[0])]
    return {
        'start (exec to the first thread: libc, locale, curl and OpenSSL init, manifest)': first_thread[2] - t0,
        'threads, status thread, fetch of the input, outputs prepared (to the step\'s fork)': fork[2] - first_thread[2],
        'the step (fork, exec sh, mkdir, its exit seen)': reaped[3] - fork[2],
        'pack and store the output, outputs.json (durable)': uploaded - reaped[3],
        'final logs and status.json (durable)': final - uploaded,
        'exit (threads joined, process gone)': end - final,
        'total (traced)': end - t0,
        'fsync calls (all threads)': len(syncs),
        'fsync wall time after the step (main and status threads)': sum(e[3] - e[2] for e in crit),
    }


def main():
    runs = [phases(p) for p in sys.argv[1:]]
    print('| phase | median ms | min | max |')
    print('|---|---|---|---|')
    for k in runs[0]:
        vals = [r[k] for r in runs]
        if k.startswith('fsync calls'):
            print('| %s | %g | %g | %g |' % (k, statistics.median(vals), min(vals), max(vals)))
        else:
            print('| %s | %.1f | %.1f | %.1f |' % (k, 1000 * statistics.median(vals), 1000 * min(vals),
                                                   1000 * max(vals)))


if __name__ == '__main__':
    main()
