#!/usr/bin/env python3
"""Latency from a step's print to the submitter's print, for make bench (case 8).

Usage: log_latency.py CASE TOOL RESULTS.jsonl -- CMD...

CMD is a `stepop submit` whose step prints lines "LAT <seconds>" with the kernel's uptime at the
moment of printing (/proc/uptime: the same clock inside a container as outside, no date(1) with
nanoseconds needed in the image). Each such line read from CMD's stdout gives one latency; the
list is appended to RESULTS as {"case", "tool", "latency_ms": [...]}. Resolution: 10 ms.
"""
import json
import subprocess
import sys


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def main():
    case, tool, results = sys.argv[1:4]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    lat = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        for line in p.stdout:
            now = uptime()
            parts = line.split()
            if len(parts) == 2 and parts[0] == "LAT":
                lat.append(round((now - float(parts[1])) * 1000))
    if p.returncode != 0 or not lat:
        print(f"log_latency: {tool}: exit {p.returncode}, {len(lat)} lines", file=sys.stderr)
        sys.exit(1)
    with open(results, "a") as f:
        f.write(json.dumps({"case": case, "tool": tool, "latency_ms": lat}) + "\n")
    lat.sort()
    print(f"  {case} / {tool}: median {lat[len(lat) // 2]} ms, p95 {lat[int(len(lat) * 0.95)]} ms, "
          f"{len(lat)} lines", file=sys.stderr)


if __name__ == "__main__":
    main()
