"""Collecting a class: 1,000 generated submissions into a fresh DuckDB, then the same files again (unchanged: known
by their bytes); and 1,000 and 10,000 each in a process of their own for elapsed time and peak RSS (`feedtax collect` as
an instructor runs it); and what a first collect costs per file, stage by stage (the floor under its time).

Each submission is a varied copy of one real run of every stage measured here at full breadth
(4 tracks x 5 formats, probes, a small loader sweep, projections: ~240 kB).
Run: python -m pytest benchmarks/test_collect_speed.py -s   (--benchmark-only would skip the peak-RSS cases)
(the 10,000 case writes 2.4 GB of submissions and takes about 6 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from feedtax.vocabulary import FORMATS, TRACKS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import test_collect as corpus  # noqa: E402  (the tests' submission generator)

from feedtax.classroom import collect  # noqa: E402

N_SUBMISSIONS = 1000


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """A folder of n generated submissions, made once per n."""
    base = json.loads(corpus.base_run(TRACKS, FORMATS))
    made: dict[int, Path] = {}

    def folder_of(n: int) -> Path:
        if n not in made:
            folder = made[n] = tmp_path_factory.mktemp(f"class{n}")
            for i in range(n):
                doc = corpus.variant(base, i, seed=1)
                (folder / f"{doc['run_id']}.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        return made[n]

    return folder_of


@pytest.fixture(scope="module")
def submissions(corpora) -> Path:
    return corpora(N_SUBMISSIONS)


def test_collect_1000_submissions(benchmark, submissions, tmp_path):
    dbs = iter(range(10**6))

    def fresh_db():
        return (submissions, tmp_path / f"class{next(dbs)}.duckdb"), {}

    benchmark.group = "collect"
    benchmark.extra_info["submissions"] = N_SUBMISSIONS
    benchmark.extra_info["bytes"] = sum(p.stat().st_size for p in submissions.iterdir())
    report = benchmark.pedantic(lambda folder, db: collect.collect([folder], db), setup=fresh_db, rounds=2,
                                iterations=1)
    assert len(report.accepted) == N_SUBMISSIONS and report.ok
    assert report.table_rows["formats"] == 20 * N_SUBMISSIONS


def test_recollect_1000_unchanged_submissions(benchmark, submissions, tmp_path):
    db = tmp_path / "class.duckdb"
    assert collect.collect([submissions], db).ok
    benchmark.group = "collect"
    benchmark.extra_info["submissions"] = N_SUBMISSIONS
    report = benchmark.pedantic(lambda: collect.collect([submissions], db), rounds=3, iterations=1)
    assert not report.accepted and len(report.duplicates) == N_SUBMISSIONS and report.ok


# Peak RSS from /proc/self/status VmHWM: this process's own high-water mark. ru_maxrss would not do: Linux keeps it
# across exec, so a child of the (large) pytest process would report the parent's size.
PEAK = """
import json, resource, sys, time
from feedtax.classroom import collect
t0 = time.perf_counter()
report = collect.collect([sys.argv[1]], sys.argv[2])
try:
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
except OSError:
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"accepted": len(report.accepted), "duplicates": len(report.duplicates), "ok": report.ok,
                  "elapsed_s": time.perf_counter() - t0, "peak_rss_bytes": hwm * 1024}))
"""


@pytest.mark.parametrize("n", [N_SUBMISSIONS, 10 * N_SUBMISSIONS])
def test_collect_peak_rss(corpora, n, tmp_path, tree_memory):
    """Elapsed time and memory of a collect process (interpreter and imports included), first and again: its own peak
    RSS, its validating pool's largest peak RSS, and the whole tree's peak PSS (what the processes hold together,
    shared pages counted once), printed."""
    folder = corpora(n)
    db = tmp_path / "class.duckdb"
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    runs = {}
    for name in ("first", "again"):
        child = subprocess.Popen([sys.executable, "-c", PEAK, str(folder), str(db)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        out, err, peaks = tree_memory(child, every_s=0.1)
        assert child.returncode == 0, err[-3000:]
        runs[name] = run = json.loads(out)
        pool = [rss for pid, rss in peaks["rss"].items() if pid != child.pid]
        print(f"collect {n:,} submissions ({size_mb:,.0f} MB), {name}: {run['elapsed_s']:.2f} s, peak RSS "
              f"{run['peak_rss_bytes'] / 1e6:.0f} MB, pool {len(pool)} process(es) peak RSS "
              f"{max(pool, default=0) / 1e6:.0f} MB each at most, tree peak PSS {peaks['pss'] / 1e6:.0f} MB")
    assert runs["first"]["accepted"] == n and runs["again"]["duplicates"] == n


def test_first_collect_cpu_per_stage(submissions, tmp_path):
    """What one file costs a first collect, stage by stage, in CPU time (200 files, each taken through every stage
    before the next file): preparing it (the work the pool spreads over the cores), then its rows' insert into a
    fresh DuckDB, 100 files per transaction on one DuckDB thread as the collect does (its cost grows with the class:
    this is the least). n files need at least n x the sum / the cores. Printed, with the whole prepare
    (prepare_chunk, 25 at a time, pickled as the pool's are) beside the stages' sum."""
    import gc

    from feedtax.classroom import prepare

    files = sorted(submissions.iterdir())[:200]
    plan = prepare.plan()
    gc.collect()
    gc.freeze()  # pytest's own objects out of the collector's way, as a pool process has few: else the parse and the
    # validation, which make thousands of objects each, pay for rescanning them (2-3x the time measured here)
    try:
        per_file, whole = _stages(files, plan, tmp_path)
    finally:
        gc.unfreeze()
    for stage, ms in per_file.items():
        print(f"first collect, per file: {stage:38s} {ms:5.2f} ms")
    print(f"first collect, per file: {'sum of the stages':38s} {sum(per_file.values()):5.2f} ms; "
          f"prepare_chunk, pickled: {whole:5.2f} ms")
    assert all(ms > 0 for ms in per_file.values())


def _stages(files: list[Path], plan, tmp_path: Path) -> tuple[dict[str, float], float]:
    """(CPU ms per file by stage, ms per file of the whole prepare)."""
    import pickle
    import time

    from feedtax.classroom import prepare, store
    from feedtax.results import plausible, validate
    from feedtax.results.schema import Results

    spent: dict[str, float] = {}
    items, jobs = [], []

    def timed(stage, fn, *args, **kwargs):
        t0 = time.thread_time()
        out = fn(*args, **kwargs)
        spent[stage] = spent.get(stage, 0.0) + time.thread_time() - t0
        return out

    for path in files:
        data = path.read_bytes()
        jobs.append((path, data, "0" * 64))
        doc = timed("parse (orjson)", orjson.loads, data)
        timed("numbers, keys and depth (survey)", plausible.survey, doc)
        timed("keys in the text", validate._text_keys, data)  # noqa: SLF001  (the duplicate-key check's half)
        res = timed("strict validation (pydantic)", Results.model_validate_json, data, strict=True)
        timed("derived fields", plausible.inconsistent, res)
        timed("fingerprints", _fingerprints, res)
        timed("Lock answers", prepare._answers, res)  # noqa: SLF001
        timed("compression (zstd)", store.pack_raw, data)
        rows = timed("rows", store.rows_of, res, plan)
        items.append(store.Prepared(path, res.run_id, rows, (res.run_id, "", "", len(data), str(path), 7, None, "[]",
                                                             b"", "", "zstd"), "", []))
    for i in range(0, len(items), prepare.CHUNK_FILES):  # as the pool does: a chunk's tables at a time
        timed("Arrow tables and pickling", _pickled_tables, plan, items[i:i + prepare.CHUNK_FILES])
    chunks = []
    t0 = time.thread_time()
    for i in range(0, len(jobs), prepare.CHUNK_FILES):
        chunks.append(prepare.prepare_chunk(jobs[i:i + prepare.CHUNK_FILES]))
        pickle.dumps(chunks[-1])
    whole = time.thread_time() - t0
    per_batch = 100 // prepare.CHUNK_FILES  # the chunks joined into the collect's transactions of 100 files
    batches = [store.join([b for _, b in chunks[i:i + per_batch]]) for i in range(0, len(chunks), per_batch)]
    con = store.connect(tmp_path / "stages.duckdb")
    con.execute("SET threads = 1")
    store.ensure_tables(con, plan)
    t0 = time.process_time()
    for batch in batches:
        store.insert_tables(con, batch)
    con.execute("CHECKPOINT")
    spent["DuckDB insert (the collect's process)"] = time.process_time() - t0
    con.close()
    return {stage: s * 1e3 / len(files) for stage, s in spent.items()}, whole * 1e3 / len(files)


def _fingerprints(res) -> tuple[str, str]:
    """The two fingerprints prepare computes: the validated run's and its measurements'."""
    import hashlib

    return hashlib.sha256(res.__pydantic_serializer__.to_json(res)).hexdigest(), res.measurements_sha256()


def _pickled_tables(plan, items) -> bytes:
    """Files' Arrow tables, pickled as a pool process hands them back."""
    import pickle

    from feedtax.classroom import store

    return pickle.dumps(store.batch_tables(plan, items).tables)
