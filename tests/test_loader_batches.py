"""Batch assembly (feedtax.loader.batches): stacking rows, Parts into one batch, numpy -> tensors, the
worker's group-at-a-time fill with its stage times."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feedtax.loader.batches import INDEX_KEY, STAGE_KEY, Parts, _fill, assemble, stack, to_tensors


def test_collate_makes_tensors_sharing_memory():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    out = to_tensors({"a": arr, STAGE_KEY: np.zeros(4)})
    assert isinstance(out["a"], torch.Tensor) and out["a"].dtype == torch.int16
    arr[0, 0] = 99
    assert out["a"][0, 0] == 99  # no copy
    assert isinstance(out[STAGE_KEY], np.ndarray)


def test_stack_matches_numpy_and_refuses_ragged_rows():
    rows = [np.arange(6, dtype=np.int16).reshape(2, 3) + i for i in range(5)]
    scalars = [np.asarray(np.float32(v)) for v in (-0.0, np.nan, np.inf, 1e-45)]
    got = stack([{"x": r, "s": s} for r, s in zip(rows, scalars, strict=False)])
    assert np.array_equal(got["x"], np.stack(rows[:4])) and got["x"].dtype == np.int16
    assert got["s"].tobytes() == np.stack(scalars).tobytes()  # -0.0, NaN, inf and a subnormal bit for bit
    with pytest.raises(ValueError):  # 4 + 2 + 6 values would fill 3 rows of 4: never silently
        stack([{"x": np.zeros(n)} for n in (4, 2, 6)])


def test_assemble_joins_blocks_and_times_on_a_copy_of_the_stage():
    stage = np.array([0.1, 0.0, 0.0, 3])
    blocks = Parts({"x": [np.zeros((1, 2)), np.ones((2, 2))]}, 3, {STAGE_KEY: stage})
    out = assemble(blocks)
    assert out["x"].tolist() == [[0, 0], [1, 1], [1, 1]] and out[STAGE_KEY][2] > 0 and stage[2] == 0
    lone = np.arange(4.0).reshape(2, 2)
    assert np.shares_memory(assemble(Parts({"x": [lone]}, 2, {}))["x"], lone)  # a lone block stays a view
    ready = {"x": lone}
    assert assemble(ready) is ready  # a ready batch passes through


@pytest.mark.parametrize("drop_last", [False, True])
def test_fill_cuts_a_keyed_stream_into_batches_with_their_index(drop_last):
    samples = [({"x": np.full(3, i, np.int32), "s": np.float32(i)}, (i // 4, i % 4)) for i in range(10)]
    stream = iter(samples)
    rng = np.random.default_rng(0)
    batches = []
    while (batch := _fill(stream, 4, sink=None, transform=None, rng=rng, keyed=True, with_index=True,
                          drop_last=drop_last)) is not None:
        batches.append(batch)
    assert [len(b["x"]) for b in batches] == ([4, 4] if drop_last else [4, 4, 2])
    rows = np.concatenate([b["x"][:, 0] for b in batches]).tolist()
    assert rows == list(range(len(rows))) and np.concatenate([b["s"] for b in batches]).tolist() == rows
    ids = np.concatenate([b[INDEX_KEY] for b in batches]).tolist()
    assert ids == [[i // 4, i % 4] for i in rows]
    assert all(b[STAGE_KEY][3] == len(b["x"]) for b in batches)
