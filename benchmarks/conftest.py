"""Benchmark data: each track at laptop-profile sizes, plus 256 float32 values per sample (a plain vector, the
reference shape for comparing each library's fast path with the naive one); and a process tree's memory, sampled."""

from __future__ import annotations

import subprocess
import threading

import numpy as np
import psutil
import pytest

from feedtax import datasets
from feedtax.bench.profiles import get

N = 500


@pytest.fixture(scope="session")
def bench_samples() -> dict[str, list[dict]]:
    out = {t: list(datasets.generate(t, N, seed=0, sizes=get("laptop").sizes)) for t in datasets.TRACKS}
    rng = np.random.default_rng(0)
    out["vector256"] = [{"x": rng.standard_normal(256).astype(np.float32)} for _ in range(N)]
    return out


def _sample_tree(proc: psutil.Process, peaks: dict, stop: threading.Event, every_s: float) -> None:
    """Each process's peak RSS (by pid) and the tree's peak PSS, until stop."""
    while not stop.wait(every_s):
        try:
            tree = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        pss = 0
        for p in tree:
            try:
                info = p.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            peaks["rss"][p.pid] = max(peaks["rss"].get(p.pid, 0), info.rss)
            pss += info.pss
        peaks["pss"] = max(peaks["pss"], pss)


@pytest.fixture
def tree_memory():
    """communicate(child, every_s): wait for a subprocess.Popen while sampling its tree's memory; (stdout, stderr,
    peaks): peaks["rss"] each process's peak RSS by pid, peaks["pss"] the whole tree's peak PSS (RSS would count the
    pages forked processes share once per process)."""
    def communicate(child: subprocess.Popen, every_s: float = 0.5) -> tuple[str, str, dict]:
        peaks: dict = {"rss": {}, "pss": 0}
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_tree, args=(psutil.Process(child.pid), peaks, stop, every_s),
                                   daemon=True)
        sampler.start()
        try:
            out, err = child.communicate()
        finally:
            stop.set()
            sampler.join()
        return out, err, peaks

    return communicate
