"""Encode and decode per format and track (pytest-benchmark), and each library's fast path beside the
naive one: stdlib csv vs pyarrow.csv, stdlib json vs orjson. Run: python -m pytest benchmarks
Each benchmark round handles N samples; samples/s = N / the reported time."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from benchmarks.conftest import N
from feedtax import formats

KINDS = ["cloud", "edge", "mobile", "tiny", "vector256"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", formats.NAMES)
def test_encode(benchmark, bench_samples, tmp_path, fmt, kind):
    codec = formats.get(fmt)
    benchmark.group = f"encode {kind}"
    benchmark.extra_info["samples"] = N
    benchmark(codec.write, bench_samples[kind], tmp_path, samples_per_shard=250)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fmt", formats.NAMES)
def test_decode_warm(benchmark, bench_samples, tmp_path, fmt, kind):
    codec = formats.get(fmt)
    paths = codec.write(bench_samples[kind], tmp_path, samples_per_shard=250)
    benchmark.group = f"decode {kind}"
    benchmark.extra_info["samples"] = N
    count = benchmark(lambda: sum(1 for _ in codec.iter_samples(paths)))
    assert count == N


# --- naive paths beside the fast ones, on 256 float32 values per sample ---------------------------


def _rows(samples):
    return np.stack([s["x"] for s in samples])


def test_naive_stdlib_csv_decode(benchmark, bench_samples):
    buf = io.StringIO()
    csv.writer(buf).writerows(_rows(bench_samples["vector256"]).tolist())
    text = buf.getvalue()
    benchmark.group = "naive vs fast: csv decode vector256"
    rows = benchmark(lambda: [np.array(r, dtype=np.float32) for r in csv.reader(io.StringIO(text))])
    assert len(rows) == N


def test_fast_pyarrow_csv_decode(benchmark, bench_samples):
    table = pa.table({str(i): c for i, c in enumerate(_rows(bench_samples["vector256"]).T)})
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    data = buf.getvalue()
    benchmark.group = "naive vs fast: csv decode vector256"
    t = benchmark(lambda: pacsv.read_csv(pa.BufferReader(data), read_options=pacsv.ReadOptions(use_threads=False)))
    assert t.num_rows == N


def test_naive_stdlib_json_decode(benchmark, bench_samples):
    lines = [json.dumps({"x": s["x"].tolist()}) for s in bench_samples["vector256"]]
    benchmark.group = "naive vs fast: json decode vector256"
    out = benchmark(lambda: [np.array(json.loads(line)["x"], dtype=np.float32) for line in lines])
    assert len(out) == N


def test_fast_orjson_decode(benchmark, bench_samples):
    lines = [orjson.dumps({"x": s["x"]}, option=orjson.OPT_SERIALIZE_NUMPY) for s in bench_samples["vector256"]]
    benchmark.group = "naive vs fast: json decode vector256"
    out = benchmark(lambda: [np.array(orjson.loads(line)["x"], dtype=np.float32) for line in lines])
    assert len(out) == N


def test_naive_stdlib_json_encode(benchmark, bench_samples):
    benchmark.group = "naive vs fast: json encode vector256"
    benchmark(lambda: [json.dumps({"x": s["x"].tolist()}) for s in bench_samples["vector256"]])


def test_fast_orjson_encode(benchmark, bench_samples):
    benchmark.group = "naive vs fast: json encode vector256"
    samples = bench_samples["vector256"]
    benchmark(lambda: [orjson.dumps({"x": s["x"]}, option=orjson.OPT_SERIALIZE_NUMPY) for s in samples])
