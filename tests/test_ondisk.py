"""Datasets larger than memory (feedtax.bench.ondisk, `--dataset-size`): written streaming to a size on disk with the
same bytes one process writes, read back as the samples they were made from, read once in order, windows that never
overlap until the dataset wraps, memory that does not grow with the size, and the refusals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import small_tmpfs, terminal_signals

from feedtax import datasets
from feedtax import formats as codecs
from feedtax.bench import ondisk
from feedtax.bench.baseline import IndexedSamples
from feedtax.bench.profiles import get
from feedtax.probes import pagecache
from feedtax.vocabulary import FORMATS

SIZES = get("ci").sizes


def _dataset(tmp_path: Path, fmt: str, size: int, *, per_shard: int = 40, processes: int = 2, name: str = "d"):
    return ondisk.write_dataset("edge", fmt, tmp_path / name / fmt, size, seed=3, sizes=SIZES, per_shard=per_shard,
                                processes=processes)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_dataset_is_its_size_and_reads_back_as_the_samples_it_was_made_from(tmp_path, fmt):
    ds = _dataset(tmp_path, fmt, 300_000)
    shard_sizes = [p.stat().st_size for p in ds.paths]
    assert ds.nbytes == sum(shard_sizes) and 300_000 <= ds.nbytes < 300_000 + max(shard_sizes)
    codec = codecs.get(fmt)
    assert ds.lengths == [codec.count(p) for p in ds.paths] and ds.samples == sum(ds.lengths)
    for i, got in enumerate(codec.iter_samples(ds.paths)):
        want = datasets.sample("edge", i, 3, SIZES)
        assert list(got) == list(want) and all(np.array_equal(got[k], want[k]) for k in want), i
    assert i + 1 == ds.samples


@pytest.mark.parametrize("fmt", ["raw", "parquet", "json"])
def test_shards_made_in_a_pool_are_the_bytes_one_process_writes_and_a_smaller_dataset_is_a_prefix(tmp_path, fmt):
    big = _dataset(tmp_path, fmt, 200_000, per_shard=10, processes=2, name="big")
    small = _dataset(tmp_path, fmt, 90_000, per_shard=10, processes=1, name="small")
    alone = codecs.get(fmt).write(datasets.generate("edge", big.samples, 3, SIZES), tmp_path / "alone",
                                  samples_per_shard=10)
    assert [p.read_bytes() for p in big.paths] == [p.read_bytes() for p in alone]
    assert len(small.paths) < len(big.paths)
    assert [p.read_bytes() for p in small.paths] == [p.read_bytes() for p in big.paths[:len(small.paths)]]


def test_shards_are_sized_in_bytes():
    assert ondisk.samples_per_shard(1000.0, 20 * 10**9) == ondisk.SHARD_TARGET_BYTES // 1000
    assert ondisk.samples_per_shard(1000.0, 1_600_000) == 100  # a small dataset: MIN_SHARDS shards
    assert ondisk.samples_per_shard(1e9, 20 * 10**9) == 1  # a sample over the target: one per shard


def _evictable(path: Path) -> bool:
    return pagecache.evict([path]).evicted


def test_the_first_read_reads_every_byte_cold_and_stops_at_its_budget(tmp_path):
    ds = _dataset(tmp_path, "raw", 400_000)
    whole = ondisk.read_pass(ds)
    assert whole.read_bytes == ds.nbytes and whole.whole and whole.read_s > 0
    if _evictable(ds.paths[0]):
        assert whole.resident_before == 0.0  # written back and dropped as each shard landed
        assert pagecache.resident_fraction(ds.paths) < 0.05  # and dropped again after the pass
    cut = ondisk.read_pass(ds, budget_s=0.0)
    assert not cut.whole and cut.read_bytes < ds.nbytes


def test_windows_follow_each_other_wrap_when_the_dataset_ends_and_are_evicted(tmp_path):
    ds = _dataset(tmp_path, "raw", 400_000)
    n = len(ds.paths)
    assert n >= 6
    w = ondisk.Windows(ds)
    first, got = w.take(ds.lengths[0] + 1)  # one sample past a shard: two shards
    assert first == ds.paths[:2] and got == sum(ds.lengths[:2])
    second, _ = w.take(1, shards=3)  # at least 3 shards, whatever the samples
    assert second == ds.paths[2:5] and w.wraps == 0
    rest, _ = w.take(10**9)  # never more than the whole dataset, wrapping once
    assert len(rest) == n and rest[: n - 5] == ds.paths[5:] and rest[n - 5:] == ds.paths[:5] and w.wraps == 1
    assert w.taken_bytes == sum(p.stat().st_size for p in first + second + rest)
    if _evictable(ds.paths[0]):
        assert not w.not_evicted and pagecache.resident_fraction(rest) < 0.05


def test_the_default_loaders_index_holds_shards_not_samples(tmp_path):
    paths = codecs.get("raw").write(datasets.generate("edge", 130, 0, SIZES), tmp_path, samples_per_shard=40)
    ds = IndexedSamples("raw", paths)
    assert len(ds) == 130 and len(ds.starts) == len(paths) + 1
    for i in (0, 39, 40, 129):
        assert np.array_equal(ds[i]["frame"], datasets.sample("edge", i, 0, SIZES)["frame"])
    with pytest.raises(IndexError):
        ds[130]


def test_a_sweep_over_datasets_reads_them_cold_and_reports_each(tmp_path, feedtax_cli):
    ran = feedtax_cli("sweep", "--dataset-size", "2MB", "--data-dir", tmp_path, "--format", "raw,csv",
                      "--workers", "0,2", "--loader", "tuned", "--steps", "4", "--max-s", "0.2", "--json",
                      timeout_s=300)
    assert ran.exit_code == 0, ran.output
    doc = json.loads(ran.stdout)
    reads = {d["format"]: d for d in doc["feeding"]["datasets"]}
    assert set(reads) == {"raw", "csv"} and {r["format"] for r in doc["loader"]} == {"raw", "csv"}
    for d in reads.values():
        assert 2_000_000 <= d["bytes_on_disk"] and d["first_read_bytes"] == d["bytes_on_disk"]
        assert d["windows_bytes"] > 0 and d["shards"] >= 2
    assert "first read" in ran.stderr and list(tmp_path.iterdir()) == []  # the datasets went with the sweep


def test_keep_data_leaves_the_datasets_and_says_where(tmp_path, feedtax_cli):
    ran = feedtax_cli("sweep", "--dataset-size", "2MB", "--data-dir", tmp_path, "--format", "raw", "--workers", "0",
                      "--loader", "tuned", "--steps", "4", "--max-s", "0.2", "--keep-data", timeout_s=300)
    assert ran.exit_code == 0, ran.output
    (work,) = tmp_path.glob("feedtax-sweep-*")
    assert f"kept: {work}" in ran.stderr and sum(p.stat().st_size for p in work.rglob("shard-*")) >= 2_000_000


PEAK = """
import sys
from feedtax.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) * 1024)
"""


def test_memory_does_not_grow_with_the_datasets_size(tmp_path):
    peaks = []
    for size in ("8MB", "64MB"):
        done = subprocess.run([sys.executable, "-c", PEAK, "sweep", "--dataset-size", size, "--data-dir", tmp_path,
                               "--track", "cloud", "--profile", "laptop", "--format", "raw", "--workers", "0",
                               "--loader", "tuned", "--steps", "4", "--max-s", "0.2", "--json"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        peaks.append(int(done.stdout.strip().splitlines()[-1]))
    assert peaks[1] <= peaks[0] * 1.10 + 5e6, peaks  # 8x the data, the same memory


@pytest.mark.parametrize("args, message", [
    (["--dataset-size", "0"], "--dataset-size"),
    (["--dataset-size", "abc"], "--dataset-size"),
    (["--data-dir", "."], "--data-dir and --keep-data go with --dataset-size"),
    (["--keep-data"], "--data-dir and --keep-data go with --dataset-size"),
    (["--dataset-size", "8MB", "--disk-tier", "hdd"], "without --disk-tier"),
    (["--dataset-size", "8MB", "--dataset", "x:y"], "--dataset-size is for feedtax's own formats"),
])
def test_dataset_options_are_checked_before_any_work(feedtax_cli, args, message):
    ran = feedtax_cli("sweep", *args)
    assert ran.exit_code == 2 and message in ran.output and len(ran.output.strip().splitlines()) == 1, ran.output


def test_a_missing_data_dir_is_one_line(feedtax_cli, tmp_path):
    ran = feedtax_cli("sweep", "--dataset-size", "8MB", "--data-dir", tmp_path / "nope")
    assert ran.exit_code == 2 and ran.output.strip() == f"feedtax: {tmp_path / 'nope'}: --data-dir does not exist"


def test_too_little_room_is_refused_with_the_figures_before_anything_is_written(feedtax_cli, tmp_path):
    with small_tmpfs(tmp_path / "t", "size=16M") as small:
        ran = feedtax_cli("sweep", "--dataset-size", "64MB", "--data-dir", small, "--format", "raw,csv")
        assert ran.exit_code == 2 and len(ran.output.strip().splitlines()) == 1, ran.output
        assert ran.output.startswith(f"feedtax: {small}: not enough free space for 2 dataset(s) of 0.064 GB")
        assert "MB free, about" in ran.output and "a smaller --dataset-size" in ran.output
        ran = feedtax_cli("run", "--profile", "ci", "--formats", "raw", "--tracks", "edge", "--dataset-size", "64MB",
                          "--out", small / "out")
        assert ran.exit_code == 2 and "not enough free space" in ran.output and "--dataset-size" in ran.output
        assert [p for p in small.rglob("*") if not p.is_dir()] == []  # nothing written (OUT made, empty)


def test_a_run_sweeps_its_datasets_records_them_and_removes_them(tmp_path, feedtax_cli):
    from feedtax import results

    ran = feedtax_cli("run", "--profile", "ci", "--tracks", "edge", "--formats", "raw", "--loader", "tuned",
                      "--dataset-size", "2MB", "--out", tmp_path / "out", timeout_s=600)
    assert ran.exit_code == 0, ran.output[-3000:]
    res = results.load(tmp_path / "out" / "results.json")
    (ds,) = res.feeding.datasets
    assert res.config.dataset_bytes == 2_000_000 and res.config.sweep["dataset_bytes"] == 2_000_000
    assert (ds.track, ds.format) == ("edge", "raw") and ds.bytes_on_disk >= 2_000_000 and ds.first_read_whole
    assert ds.windows_bytes > 0 and {r.format for r in res.loader} == {"raw"}
    assert not (tmp_path / "out" / "data").exists()
    page = (tmp_path / "out" / "report.html").read_text()
    assert "This sweep read a dataset per format" in page and "A dataset here fits in that memory" in page


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_dataset_is_written_stops_in_one_line_and_leaves_nothing(tmp_path, signum):
    proc = subprocess.Popen([sys.executable, "-m", "feedtax", "sweep", "--dataset-size", "2GB", "--data-dir", tmp_path,
                             "--track", "cloud", "--profile", "laptop", "--format", "raw", "--workers", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=terminal_signals)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("feedtax-sweep-*/*/shard-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)  # to the sweep alone: its dataset writers leave signals to it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == f"feedtax: interrupted by {signal.Signals(signum).name}", err
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []
