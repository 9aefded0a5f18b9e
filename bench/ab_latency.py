"""Latency of the working tree against an earlier revision, measured in alternating runs.

    python bench/ab_latency.py HEAD~1                 # 3 pairs of 20 s runs (about 20 min)
    python bench/ab_latency.py 0795fa4 --pairs 5 --seconds 30

On a shared machine two runs of `bench/latency.py` minutes apart differ by 2-3 ms at P99,
more than most changes move it, so a single before/after pair says little. This checks
REV out in a git worktree of its own (with REV's compiled extensions: this checkout's
when the C sources are the same, else built from REV as `pip install` builds them), runs `bench/latency.py` (the default settings) from REV and from the
working tree in turn, `--pairs` times, so both meet the same neighbours. It prints each
run's P99 at real and at 10x rates and the collector's peak RSS, then the means and how
many pairs the working tree won. The last line is one JSON object: {"rev", "pairs": [...],
"mean": {"before": {...}, "after": {...}}}. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from statistics import mean
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FIGURES = (("real", "p99_ms"), ("x10", "p99_ms"), ("real", "peak_rss_mb"), ("x10", "peak_rss_mb"))


def _checkout(rev: str, where: Path) -> None:
    """REV in a worktree at `where`, with its compiled extensions: this checkout's when the C
    sources are the same, else REV's built as `pip install` builds them (a wheel, unpacked)."""
    subprocess.run(["git", "worktree", "add", "--detach", "--force", str(where), rev], cwd=REPO, check=True,
                   capture_output=True)
    same_c = subprocess.run(["git", "diff", "--quiet", rev, "--", "*.c", "*.h", "pyproject.toml"], cwd=REPO).returncode == 0
    if same_c:
        for built in REPO.glob("*/*.so"):
            shutil.copy2(built, where / built.relative_to(REPO))
        return
    wheels = where / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."], cwd=where,
                   check=True, capture_output=True)
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(where, [name for name in archive.namelist() if name.endswith(".so")])


def _run(tree: Path, seconds: float) -> dict[str, float]:
    """One `bench/latency.py` run from `tree`: the figures of its last (JSON) line."""
    done = subprocess.run([sys.executable, "bench/latency.py", "--seconds", str(seconds)], cwd=tree, check=True,
                          capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {f"{scenario}_{name}": float(result[scenario][name]) for scenario, name in FIGURES}


def _line(label: str, figures: dict[str, float]) -> str:
    return (f"{label:8s} real P99 {figures['real_p99_ms']:6.2f} ms   10x P99 {figures['x10_p99_ms']:6.2f} ms   "
            f"RSS {figures['real_peak_rss_mb']:5.1f} / {figures['x10_peak_rss_mb']:5.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rev", help="the revision to compare the working tree with")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each, alternating (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per scenario (default %(default)s)")
    args = parser.parse_args()

    pairs: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="marketprism-ab-") as tmp:
        before_tree = Path(tmp) / "before"
        try:
            _checkout(args.rev, before_tree)
            for number in range(1, max(args.pairs, 1) + 1):
                pair = {"before": _run(before_tree, args.seconds), "after": _run(REPO, args.seconds)}
                pairs.append(pair)
                print(_line(f"{number} before", pair["before"]), flush=True)
                print(_line(f"{number} after", pair["after"]), flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=REPO, capture_output=True)
    means = {side: {name: round(mean(p[side][name] for p in pairs), 2) for name in pairs[0][side]}
             for side in ("before", "after")}
    print(_line("mean before", means["before"]))
    print(_line("mean after", means["after"]))
    for scenario in ("real", "x10"):
        won = sum(p["after"][f"{scenario}_p99_ms"] < p["before"][f"{scenario}_p99_ms"] for p in pairs)
        print(f"{scenario}: the working tree's P99 lower in {won} of {len(pairs)} pairs")
    print(json.dumps({"rev": args.rev, "pairs": pairs, "mean": means}))


if __name__ == "__main__":
    main()
