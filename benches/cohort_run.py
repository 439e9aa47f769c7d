"""What the benches share: running SQL through the cohort binary with --timing, and
writing a section of RESULTS.md."""
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


def write_section(results, lines):
    """Replaces the section of the results file that starts with `lines[0]` (a "## "
    heading) by `lines`, or appends it."""
    heading = lines[0]
    text = open(results).read() if os.path.exists(results) else ""
    start = text.find(heading)
    if start >= 0:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + text[end + 1:] if end >= 0 else text[:start]
    text = text.rstrip() + "\n\n" + "\n".join(lines) + "\n"
    with open(results, "w") as f:
        f.write(text)


def peak_mib(command):
    """Runs `command` and returns its peak resident memory in MiB, as GNU time reports it
    (a child forked from this process would count this process's pages until its exec)."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
    )
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def cohort_peak(binary, statements):
    """Peak memory (MiB) of one `cohort -f` process running `statements`, on a fresh store."""
    with tempfile.TemporaryDirectory() as store:
        script = os.path.join(store, "memory.sql")
        with open(script, "w") as f:
            f.write("".join(s + ";\n" for s in statements))
        return peak_mib([binary, "--store", store, "-q", "-f", script])


def python_peak(python, code):
    """Peak memory (MiB) of one Python process running `code`."""
    return peak_mib([python, "-c", code])
