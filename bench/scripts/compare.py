#!/usr/bin/env python3
"""Side-by-side table of glassbox bench and llama-bench JSON results.

Usage: bench/scripts/compare.py RESULTS_DIR

Reads the <model>.glassbox.<round>.json and <model>.llama.<round>.json files
written by run_bench.sh. Several rounds of one model and test are pooled:
the table shows the mean and sample standard deviation of all repetitions,
and for glassbox's tg tests the mean (and range) of each run's fraction of
the read bandwidth it measured, from its mean speed and from its median
token time; then every repetition against the probe reads just before and
after it (glassbox bench reads the probe beside each tg repetition): the
median and range over the repetitions whose two reads agree within 10% (the
memory kept one speed), and the one beside the fastest reads.
"""
import collections
import json
import pathlib
import statistics
import sys


def samples(path, engine):
    try:
        data = json.loads(path.read_text())
    except ValueError:
        print(f"skipping {path}: not valid JSON (unfinished run?)", file=sys.stderr)
        return
    tests = data["tests"] if engine == "glassbox" else data
    for t in tests:
        name = f"pp{t['n_prompt']}" if t["n_gen"] == 0 else f"tg{t['n_gen']}"
        yield name, [float(x) for x in t["samples_ts"]], t


def main():
    results = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    ts = collections.defaultdict(list)  # (model, test, engine) -> samples
    fractions = collections.defaultdict(list)  # (model, test) -> one per glassbox run
    at_median = collections.defaultdict(list)  # the same at each run's median token time
    beside = collections.defaultdict(list)  # (model, test) -> steady repetitions' (fraction, faster read)
    for path in sorted(results.glob("*.json")):
        parts = path.name.split(".")
        if len(parts) < 4 or parts[-3] not in ("glassbox", "llama"):
            continue
        model, engine = ".".join(parts[:-3]), parts[-3]
        for name, values, t in samples(path, engine):
            ts[(model, name, engine)].extend(values)
            if engine == "glassbox" and "fraction_of_read_bandwidth" in t:
                fractions[(model, name)].append(t["fraction_of_read_bandwidth"])
            if engine == "glassbox" and "fraction_of_read_bandwidth_at_median_token" in t:
                at_median[(model, name)].append(t["fraction_of_read_bandwidth_at_median_token"])
            for r in t.get("repetitions_against_reads_beside", []) if engine == "glassbox" else []:
                if r["steady"]:
                    faster = max(r["read_bytes_per_second_before"], r["read_bytes_per_second_after"])
                    beside[(model, name)].append((r["fraction_of_read_beside"], faster))

    def cell(values):
        if not values:
            return "-"
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.2f} ± {sd:.2f}"

    print("| model | test | glassbox t/s | llama.cpp t/s | glassbox / llama.cpp "
          "| glassbox weight reads / measured bandwidth | the same at the median token "
          "| each repetition / the reads beside it (steady) | the same at the fastest reads |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def fraction_cell(fr):
        # Each run divides its own speed by its own probe: the mean over the
        # runs, and their range when there are several.
        text = f"{100 * statistics.mean(fr):.0f}%" if fr else ""
        if len(fr) > 1:
            text += f" ({100 * min(fr):.0f}–{100 * max(fr):.0f}%)"
        return text

    keys = sorted({(m, t) for (m, t, _) in ts})
    for model, test in keys:
        g = ts.get((model, test, "glassbox"), [])
        l = ts.get((model, test, "llama"), [])
        ratio = f"{statistics.mean(g) / statistics.mean(l):.2f}" if g and l else "-"
        frac_s = fraction_cell(fractions.get((model, test), []))
        median_s = fraction_cell(at_median.get((model, test), []))
        reps = beside.get((model, test), [])
        beside_s = fastest_s = ""
        if reps:
            fr = [f for f, _ in reps]
            beside_s = f"{100 * statistics.median(fr):.0f}% ({100 * min(fr):.0f}–{100 * max(fr):.0f}%, {len(fr)})"
            f, read = max(reps, key=lambda r: r[1])
            fastest_s = f"{100 * f:.0f}% at {read / 1e9:.0f} GB/s"
        print(f"| {model} | {test} | {cell(g)} | {cell(l)} | {ratio} | {frac_s} | {median_s} "
              f"| {beside_s} | {fastest_s} |")


if __name__ == "__main__":
    main()
