"""Reruns every peer benchmark with two cohort builds in one run, interleaved, and compares
each ratio to its peer.

    python benches/compare.py --before BIN --after BIN [--rounds 1] [--quick]

For each benchmark script (peers.py, kmeans_peers.py, trees_peers.py, forecast_peers.py,
recommend_peers.py)
and each round it runs the script once with the `--before` binary and once with the
`--after` binary (alternating which goes first from round to round), each writing its
tables to a scratch results file. It then reads back every ratio column of those tables
("vs ...", "... speed-up") and reports, per row, the ratio before and after and the change.
A change is a loss when a speed-up falls, or a multiple of the scan floor rises, by more
than 5%. The table replaces the "## Before and after" section of benches/RESULTS.md; the
other sections are left as they are. `--quick` passes smaller sizes to the scripts.
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile

from cohort_run import write_section

SECTION = "## Before and after"
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = {
    "peers.py": (["--sizes", "1000000x8,1000000x32"], ["--sizes", "200000x8,200000x32"]),
    "kmeans_peers.py": (["--runs", "1"], ["--rows", "200000", "--runs", "1"]),
    "trees_peers.py": (["--runs", "1"], ["--rows", "200000", "--runs", "1"]),
    "forecast_peers.py": (["--peer-series", "20"], ["--series", "2000", "--peer-series", "5"]),
    "recommend_peers.py": (["--runs", "1"], ["--runs", "1"]),
}
NUMBER = re.compile(r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)\s*[×x]")
TOLERANCE = 0.05


def run(script, binary, results, extra):
    # peers.py names its results file --out, the others --results.
    flag = "--out" if script == "peers.py" else "--results"
    cmd = [sys.executable, os.path.join(HERE, script), "--cohort", binary, flag, results, *extra]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=HERE)


def ratios(path):
    """{(section, row, column): value} for every ratio cell of every table in `path`."""
    found, section, header = {}, "", None
    for line in open(path).read().splitlines():
        if line.startswith("#"):
            section, header = line.lstrip("# "), None
        elif not line.startswith("|"):
            header = None
        elif line.startswith("|---"):
            continue
        else:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            group = ""
            for name, cell in zip(header, cells):
                # peers.py groups columns as "linear: cohort | vs floor | ...".
                if ":" in name:
                    group = name.split(":")[0] + " "
                match = NUMBER.search(cell)
                if match and ("vs " in name or "speed-up" in name):
                    value = float(match.group(1).replace(",", ""))
                    found[(section, cells[0], group + name)] = value
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated scripts to run (default: all)")
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    args = parser.parse_args()
    before, after = os.path.abspath(args.before), os.path.abspath(args.after)
    scripts = args.only.split(",") if args.only else list(SCRIPTS)
    runs = {"before": {}, "after": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            extra = SCRIPTS[script][1 if args.quick else 0]
            for r in range(args.rounds):
                order = [("before", before), ("after", after)]
                for side, binary in order if r % 2 == 0 else order[::-1]:
                    out = os.path.join(tmp, f"{side}-{script}-{r}.md")
                    run(script, binary, out, extra)
                    for key, value in ratios(out).items():
                        runs[side].setdefault(key, []).append(value)
    lines = [
        SECTION,
        "",
        f"{os.cpu_count()} threads, {platform.processor() or platform.machine()}, "
        f"{datetime.date.today()}; written by `benches/compare.py`"
        f"{' --quick' if args.quick else ''} with {args.rounds} round(s), the two builds "
        "interleaved on the same data. Each cell is a ratio to the peer (or to the scan floor) "
        "as the benchmark's own table gives it, averaged over the rounds.",
        "",
        "| benchmark | row | ratio | before | after | change |",
        "|---|---|---|---|---|---|",
    ]
    losses = []
    for key in sorted(runs["before"]):
        if key not in runs["after"]:
            continue
        b = sum(runs["before"][key]) / len(runs["before"][key])
        a = sum(runs["after"][key]) / len(runs["after"][key])
        section, row, column = key
        # Multiples of the floor are better lower; every other ratio is a speed-up.
        gain = b / a if "floor" in column else a / b
        if gain < 1 - TOLERANCE:
            losses.append(key)
        lines.append(f"| {section} | {row} | {column} | {b:,.2f} | {a:,.2f} | {gain - 1:+.1%} |")
    lines += [
        "",
        f"Change: + is faster after. Losses beyond {TOLERANCE:.0%}: "
        + (", ".join(f"{s} / {r} / {c}" for s, r, c in losses) if losses else "none") + ".",
    ]
    print("\n".join(lines))
    write_section(args.results, lines)


if __name__ == "__main__":
    main()
