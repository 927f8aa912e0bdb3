#!/usr/bin/env python3
"""Medians and ratios for make bench. Usage: report.py RESULTS.jsonl OUT.json [--markdown]"""
import json
import statistics
import sys

TARGETS = {
    # case: (description, check(stepop_ms, peers) -> (ok, text))
    "fetch-unpack-tar.zst": "stepop >= 1.0x curl|zstd|tar and >= 1.5x download-then-extract",
    "fetch-unpack-tar.gz": "stepop >= 1.0x curl|gzip|tar and >= 1.5x download-then-extract",
    "pack-upload-tar.zst": "stepop >= 1.0x tar|zstd -T0|curl",
    "pack-upload-tar.gz": "stepop >= 1.0x tar|pigz|curl",
    "raw-get": "stepop >= 1.0x curl -o (sha256 included)",
    "s3-put-1GiB": "stepop >= 1.5x aws cli and >= 1.0x rclone",
    "s3-get-1GiB": "stepop >= 1.0x aws cli and >= 1.0x rclone",
    "s3sink-put-1GiB": "reported, no target: the clients against bench/s3sink.js (no server work), BENCH_S3_SINK=1",
    "s3sink-get-1GiB": "reported, no target: the clients against bench/s3sink.js (no server work), BENCH_S3_SINK=1",
    "submit-docker": "stepop submit <= 1.25x podman run (speed column >= 0.8)",
    "submit-kubernetes": "stepop submit --detach <= 0.5x kubectl create -f's time (speed column >= 2.0)",
    "submit-sagemaker": "stepop submit --detach <= 0.25x aws sagemaker create-training-job's time (speed column >= 4.0)",
    "submit-vertex": "reported, no target: stepop submit --detach against one node process creating the same custom job with the npm JobServiceClient",
    "entrypoint-file": "stepop run overhead <= 10 ms beyond the step (median)",
    "log-latency": "median <= 1 s and p95 <= 2 s from the step's print to the submitter's",
    "log-objects": "a chatty step (a line every 10 ms) writes a bounded number of log objects (~60 a minute)",
    "link-http-get": "through the shaping proxy: stepop >= 4x curl's one stream (parallel ranged GETs)",
    "link-http-put": "reported, no target: WebDAV has no parallel upload, stepop's PUT is one stream like curl's",
    "link-s3-put": "through the shaping proxy: stepop >= 4x curl's one stream and >= 1.5x aws cli",
    "link-s3-get": "through the shaping proxy: stepop >= 4x curl's one stream and >= 1.5x aws cli",
}


def md(text):
    """A table cell: a pipe in a tool's command would split the row."""
    return text.replace("|", "\\|")


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    out = {"cases": {}}
    lines = []
    lines.append("| case | tool | median | throughput | stepop's speed vs this tool |")
    lines.append("|---|---|---|---|---|")
    by_case = {}
    for r in rows:
        by_case.setdefault(r["case"], []).append(r)
    for case, rs in by_case.items():
        res = {"tools": {}}
        for r in [r for r in rs if "cpu_ms" in r]:
            # The shaping proxy's CPU over a comparison (bench/lib.sh shaper_compare).
            cpu_s, wall_s, gb = r["cpu_ms"] / 1000, r["wall_ms"] / 1000, r["bytes_moved"] / 1e9
            res["shaper"] = {"cpu_s": cpu_s, "wall_s": wall_s, "gb_moved": round(gb, 2)}
            per_gb = f"{cpu_s / gb:.2f} s CPU per GB" if gb else ""
            lines.append(f"| {case} | {md(r['tool'])} | {cpu_s:.1f} s CPU in {wall_s:.0f} s ({100 * cpu_s / max(wall_s, 0.001):.0f}% of a core) | {gb:.1f} GB moved | {per_gb} |")
        rs = [r for r in rs if "cpu_ms" not in r]
        if "peak_rss_kib" in rs[0]:
            for r in rs:
                mib = r["peak_rss_kib"] / 1024
                res["tools"][r["tool"]] = {"peak_rss_mib": round(mib, 1)}
                if case.startswith("rss-stream"):
                    budget = int(r["tool"].split("STEPOP_S3_MEMORY=")[1].rstrip(")").replace("MiB", ""))
                    limit = budget + 100
                    verdict = f"target <= STEPOP_S3_MEMORY + 100 MiB ({limit} MiB): {'met' if mib <= limit else 'MISSED'}"
                else:
                    verdict = f"target <= 64 MiB: {'met' if mib <= 64 else 'MISSED'}"
                lines.append(f"| {case} | {md(r['tool'])} | peak RSS {mib:.1f} MiB | | {verdict} |")
            out["cases"][case] = res
            continue
        if "latency_ms" in rs[0]:
            for r in rs:
                lat = sorted(r["latency_ms"])
                med, p95 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.95))]
                res["tools"][r["tool"]] = {"median_ms": med, "p95_ms": p95, "lines": len(lat)}
                ok = "met" if med <= 1000 and p95 <= 2000 else "MISSED"
                lines.append(f"| {case} | {md(r['tool'])} | median {med} ms, p95 {p95} ms | {len(lat)} lines | target: {ok} |")
            out["cases"][case] = res
            continue
        if "objects_per_min" in rs[0]:
            for r in rs:
                res["tools"][r["tool"]] = {"objects_per_min": r["objects_per_min"], "lines": r["lines"]}
                lines.append(f"| {case} | {md(r['tool'])} | {r['objects_per_min']} objects a minute | {r['lines']} lines | |")
            out["cases"][case] = res
            continue
        stepop = next((r for r in rs if r["tool"].startswith("stepop") and not r["tool"].endswith("(baseline)")), None)
        valid = lambda r: [m for m in r["ms"] if m >= 0]
        sm = statistics.median(valid(stepop)) if stepop and valid(stepop) else None
        base = next((r for r in rs if r["tool"].startswith("step alone")), None)
        for r in rs:
            ms = valid(r)
            if not ms:
                lines.append(f"| {case} | {md(r['tool'])} | failed | | |")
                continue
            med = statistics.median(ms)
            entry = {"median_ms": med, "runs_ms": r["ms"]}
            thr = ""
            if r["bytes"] and med > 0 and not case.startswith("entrypoint"):
                mbs = r["bytes"] / (med / 1000) / 1e6
                entry["mb_per_s"] = round(mbs, 1)
                thr = f"{mbs:.0f} MB/s"
            ratio = ""
            if sm and r is not stepop and not r["tool"].startswith("step alone"):
                entry["stepop_speedup"] = round(med / sm, 2)
                ratio = f"{med / sm:.2f}x"
            if case.startswith("entrypoint") and base and r["tool"].startswith("stepop"):
                over = med - statistics.median(valid(base))
                entry["overhead_ms"] = over
                ratio = f"overhead {over:.0f} ms (target <= 10 ms on the file store)"
            res["tools"][r["tool"]] = entry
            lines.append(f"| {case} | {md(r['tool'])} | {med:.0f} ms | {thr} | {ratio} |")
        if case in TARGETS:
            res["target"] = TARGETS[case]
        out["cases"][case] = res
    json.dump(out, open(sys.argv[2], "w"), indent=2)
    print("\n".join(lines))
    print("\n(the speed column: the tool's median time / stepop's; above 1 means stepop is faster)")
    for case, t in TARGETS.items():
        if case in out["cases"]:
            print(f"target {case}: {t}")


if __name__ == "__main__":
    main()
