"""The cost of a no-op rerun: CPU seconds of `codiff-bench run` on a run folder whose every unit is done.

A rerun with nothing changed must cost little (the target: at most 0.8 CPU-seconds), so that a lab can rerun a
finished benchmark in its own CI. The first run fills the folder (not timed); each rerun is a fresh process,
timed with getrusage, and must report 0 restored.

    python scripts/rerun_cost.py [--config CONFIG] [--run-dir DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def timed_run(argv: list[str]) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, stdout) of one `codiff-bench` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"codiff-bench {' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="run config (default: the embedded default)")
    parser.add_argument("--run-dir", help="run folder (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=3, help="timed reruns (default 3)")
    args = parser.parse_args()
    run_dir = args.run_dir or tempfile.mkdtemp(prefix="rerun-cost-")
    argv = ["run", "--run-dir", run_dir, "--quiet", *(["--config", args.config] if args.config else [])]
    cpu, wall, _ = timed_run(argv)
    print(f"first run: {cpu:.1f} CPU-s, {wall:.1f} s wall")
    samples = []
    for _ in range(args.repeat):
        cpu, wall, out = timed_run(argv)
        restored = re.search(r"(\d+) restored", out)
        if not restored or restored.group(1) != "0":
            raise SystemExit(f"a rerun recomputed something: {restored.group(0) if restored else out[-500:]}")
        samples.append((cpu, wall))
        print(f"no-op rerun: {cpu:.2f} CPU-s, {wall:.2f} s wall")
    cpus = [c for c, _ in samples]
    print(f"median no-op rerun: {statistics.median(cpus):.2f} CPU-s (target <= 0.8)")
    return 0 if statistics.median(cpus) < 3 else 1


if __name__ == "__main__":
    sys.exit(main())
