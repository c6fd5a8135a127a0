"""The regression gate's false-alarm and detection rates on this machine (docs/ci.md, "How much to trust it").

Measured: NORMAL = 6 runs of `feedtax run --profile ci --repeat 3` of this commit and SLOWED = 3 more with every
codec's decoding 25% slower, in subprocesses one after another, interleaved (N N S N N S N N S) so a drift of the
machine over the ~45 minutes touches both kinds: 27 ci runs in all (a ci run takes ~95-150 s on 2 cores). The
slowdown is a hook that lives here, not in feedtax: the subprocess imports it before feedtax's CLI, and it replaces
each format's CODEC with one whose shard readers (iter_shard, iter_shard_columns, read_shard_sample) spin for 0.25x
the time each step took (a busy wait: a slower decoder burns CPU, and time.sleep cannot wait microseconds);
DataLoader workers are forked, so they decode with it too. Its effect is printed: the normal/slowed ratio of every
track x format's decode rate (expected 1.25).

What counts, each judged by feedtax.classroom.gate on compare's rows (what `feedtax run --baseline A
--fail-on-regression 10%` and `feedtax compare A B --fail-on-regression 10%` run), over every metric:
- the false-alarm rate: each ORDERED pair (A, B) of the 6 normal merged runs (OUT/results.json), A the baseline:
  6 x 5 = 30 comparisons; a failed gate is a false alarm;
- the detection rate: each normal merged run as the baseline A against each slowed merged run B: 6 x 3 = 18
  comparisons; a passed gate is a miss;
- the same two on single runs, for contrast (what --repeat changes): the 18 normal runs' own results
  (OUT/repeats/run-K.json) pairwise, 18 x 17 = 306 ordered comparisons, and each against each of the 9 slowed ones,
  162;
- and at 2x (what .ci/run gates at): the false alarms of the same comparisons, merged and single.

Run: python -m pytest benchmarks/test_ci_gate.py -s   (about 45 minutes on 2 cores; nothing else running)
FEEDTAX_CI_GATE_RUNS="normal,slowed,repeat" and FEEDTAX_CI_GATE_ARGS (extra `feedtax run` options, e.g.
"--tracks tiny --formats raw" for a quick look) change the plan; FEEDTAX_CI_GATE_KEEP=DIR keeps every run there.
"""

from __future__ import annotations

import os
import shlex
import statistics
import subprocess
import sys
import time
from collections import Counter
from itertools import permutations, product
from pathlib import Path

import pytest

from feedtax import results
from feedtax.classroom import compare, gate

NORMAL, SLOWED, REPEAT = (int(x) for x in os.environ.get("FEEDTAX_CI_GATE_RUNS", "6,3,3").split(","))
EXTRA = shlex.split(os.environ.get("FEEDTAX_CI_GATE_ARGS", ""))
SLOWDOWN = 0.25
RUN_LIMIT_S = 1800 * REPEAT  # one `feedtax run --repeat N` (a hang fails the benchmark instead of stopping it)

HOOK = f'''"""Every codec's shard readers {SLOWDOWN:.0%} slower: each step spins for {SLOWDOWN}x the time it took."""
import dataclasses
import time
from importlib import import_module

from feedtax import formats


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _slow_iter(fn):
    def wrapped(*args, **kwargs):
        t0 = time.perf_counter()
        it = iter(fn(*args, **kwargs))
        _spin({SLOWDOWN} * (time.perf_counter() - t0))
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                _spin({SLOWDOWN} * (time.perf_counter() - t0))
                return
            _spin({SLOWDOWN} * (time.perf_counter() - t0))
            yield item
    return wrapped


def _slow_call(fn):
    def wrapped(*args, **kwargs):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        _spin({SLOWDOWN} * (time.perf_counter() - t0))
        return out
    return wrapped


for name in formats.NAMES:
    module = import_module(f"feedtax.formats.{{name}}")
    c = module.CODEC
    module.CODEC = dataclasses.replace(
        c, iter_shard=_slow_iter(c.iter_shard),
        iter_shard_columns=c.iter_shard_columns and _slow_iter(c.iter_shard_columns),
        read_shard_sample=c.read_shard_sample and _slow_call(c.read_shard_sample))
'''


def _plan() -> list[str]:
    """The order of the runs: slowed ones spread among the normal ones."""
    kinds, slowed = [], SLOWED
    for i in range(NORMAL):
        kinds.append("normal")
        if slowed and (i + 1) % max(1, NORMAL // max(SLOWED, 1)) == 0:
            kinds.append("slowed")
            slowed -= 1
    return kinds + ["slowed"] * slowed


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[Path]]:
    """Every run of the plan: kind -> its output folders, in the order they ran."""
    where = Path(os.environ.get("FEEDTAX_CI_GATE_KEEP") or tmp_path_factory.mktemp("ci-gate"))
    where.mkdir(parents=True, exist_ok=True)
    (where / "hook").mkdir(exist_ok=True)
    (where / "hook" / "feedtax_slow_decode.py").write_text(HOOK)
    out: dict[str, list[Path]] = {"normal": [], "slowed": []}
    for i, kind in enumerate(_plan()):
        folder = where / f"{i:02d}-{kind}"
        hook = "import feedtax_slow_decode; " if kind == "slowed" else ""
        env = dict(os.environ, PYTHONPATH=str(where / "hook")) if hook else None
        cmd = [sys.executable, "-c", f"{hook}from feedtax.cli import main; main()", "run", "--profile", "ci",
               "--repeat", str(REPEAT), "--out", str(folder), *EXTRA]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=RUN_LIMIT_S)
        assert proc.returncode == 0, proc.stderr[-3000:]
        print(f"run {i + 1}/{NORMAL + SLOWED} ({kind}, --repeat {REPEAT}): {time.perf_counter() - t0:.0f} s",
              flush=True)
        out[kind].append(folder)
    return out


def _verdict(a: results.Results, b: results.Results, threshold) -> gate.GateResult:
    return gate.gate(compare.compare(a, b), threshold)


def _rates(pairs, threshold) -> tuple[int, int, Counter]:
    """(failed gates, comparisons, how often each metric failed one) over (A, B) pairs."""
    failed, blamed = 0, Counter()
    for a, b in pairs:
        v = _verdict(a, b, threshold)
        failed += not v.passed
        blamed.update(r.metric for r in v.regressions)
    return failed, len(pairs), blamed


def _slowdown(normal: list[results.Results], slowed: list[results.Results], field: str) -> list[float]:
    """Per track x format: the median over the normal runs of a decode rate's median over the slowed runs'."""
    def medians(runs):
        out: dict[tuple, list[float]] = {}
        for r in runs:
            for f in r.formats:
                out.setdefault((f.track, f.format), []).append(getattr(f, field).median)
        return {k: statistics.median(v) for k, v in out.items()}

    n, s = medians(normal), medians(slowed)
    return sorted(n[k] / s[k] for k in n if k in s)


def _line(what: str, failed: int, total: int) -> str:
    return f"{what}: {failed}/{total} ({failed / total:.0%})" if total else f"{what}: no comparisons"


def test_false_alarms_and_detection(runs):
    merged = {k: [results.load(f / "results.json") for f in v] for k, v in runs.items()}
    single = {k: [results.load(p) for f in v for p in sorted((f / "repeats").glob("run-*.json"))]
              for k, v in runs.items()}
    ten, twice = gate.Threshold(10), gate.Threshold(2, factor=True)
    for field in ("decode_samples_per_s_warm", "decode_samples_per_s_cold"):
        ratios = _slowdown(single["normal"], single["slowed"], field)
        print(f"injected slowdown, normal/slowed {field} over {len(ratios)} track x format: median "
              f"{statistics.median(ratios):.3f}, range {ratios[0]:.3f}..{ratios[-1]:.3f} (hook: {1 + SLOWDOWN:.2f})")
    cases = {
        f"merged (--repeat {REPEAT})": (list(permutations(merged["normal"], 2)),
                                        list(product(merged["normal"], merged["slowed"]))),
        "single runs": (list(permutations(single["normal"], 2)), list(product(single["normal"], single["slowed"]))),
    }
    for what, (same, slower) in cases.items():
        failed, total, blamed = _rates(same, ten)
        print(_line(f"{what}: false alarms at 10% (same commit, ordered pairs)", failed, total))
        if blamed:
            print("  metrics behind them (times): " + "; ".join(f"{m} ({n})" for m, n in blamed.most_common(8)))
        failed, total, _ = _rates(slower, ten)
        print(_line(f"{what}: detected at 10% (decoder {SLOWDOWN:.0%} slower; a failed gate is a detection)",
                    failed, total))
        failed, total, blamed = _rates(same, twice)
        print(_line(f"{what}: false alarms at 2x", failed, total))
        if blamed:
            print("  metrics behind them (times): " + "; ".join(f"{m} ({n})" for m, n in blamed.most_common(8)))
    assert merged["normal"] and merged["slowed"]
