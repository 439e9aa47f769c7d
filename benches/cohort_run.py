"""Runs a list of SQL statements through the cohort binary with --timing, for the benches."""
import os
import re
import subprocess
import tempfile


def run_timed(binary, statements):
    """Runs `statements` (each without its `;`) in one `cohort -f` script against a fresh
    model store; returns each statement's seconds, as cohort timed it, and its stdout."""
    with tempfile.TemporaryDirectory() as store:
        script = os.path.join(store, "bench.sql")
        with open(script, "w") as f:
            f.write("".join(s + ";\n" for s in statements))
        out = subprocess.run(
            [binary, "--store", store, "--timing", "--format", "csv", "-q", "-f", script],
            capture_output=True, text=True, check=True,
        )
    seconds = [float(m) for m in re.findall(r":\d+: ([0-9.]+) s", out.stderr)]
    return seconds, out.stdout
