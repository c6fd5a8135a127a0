"""A user's own pipeline, as a module next to them holds it: `feedtax sweep --dataset pipeline_fixture:...` imports it
from the current directory. Costs are known: a __getitem__ that sleeps SAMPLE_S, so one worker makes a batch of
BATCH in BATCH * SAMPLE_S = 40 ms, against a step of STEP_S = 25 ms: 1 worker cannot keep up, 2 can (20 ms a batch).
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

SAMPLE_S = 0.010
BATCH = 4
STEP_S = 0.025


class SleepyDataset(Dataset):
    """n samples of {"x": 8 floats, "label"}; each __getitem__ sleeps sample_s first."""

    def __init__(self, sample_s: float = SAMPLE_S, n: int = 10_000):
        self.sample_s, self.n = sample_s, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if self.sample_s:
            time.sleep(self.sample_s)
        return {"x": torch.full((8,), float(i)), "label": torch.tensor(i % 3)}


class Words(Dataset):
    """Samples with no tensor in them: their batches are lists of strings."""

    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int) -> str:
        return f"word {i}"


class Broken(SleepyDataset):
    """Its __getitem__ fails at sample 5."""

    def __getitem__(self, i: int) -> dict:
        if i == 5:
            raise KeyError("sample 5 is missing")
        return super().__getitem__(i)


class RankSkewed(SleepyDataset):
    """Under torchrun: on rank 1 each __getitem__ sleeps sample_s, on the others not at all, so rank 1 is the slowest
    to be fed; with fail_from, rank 1 raises for samples fail_from to fail_from + 15. The rank is read when the
    dataset is made (in the rank's own process, after the process group started)."""

    def __init__(self, sample_s: float, n: int, fail_from: int | None = None):
        super().__init__(sample_s, n)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.fail_from = fail_from

    def __getitem__(self, i: int) -> dict:
        if self.rank == 1 and self.fail_from is not None and self.fail_from <= i < self.fail_from + 16:
            raise KeyError(f"sample {i} is missing on rank 1")
        return SleepyDataset.__getitem__(self, i) if self.rank == 1 else {"x": torch.full((8,), float(i)),
                                                                           "label": torch.tensor(i % 3)}


def rank_skewed_dataset() -> Dataset:
    return RankSkewed(0.002, n=2_000)


def rank_broken_dataset() -> Dataset:
    """Rank 1 fails at samples 48 to 63: read at batch size 4 (a DistributedSampler's rank 1 reads every other
    sample from 1), not at batch size 2 nor by either breakdown (which reads the dataset's end)."""
    return RankSkewed(0.0, n=100, fail_from=48)


def slow_dataset() -> Dataset:
    return SleepyDataset()


def fast_dataset() -> Dataset:
    return SleepyDataset(0.0, n=2_000)


def fast_loader(num_workers: int, batch_size: int) -> DataLoader:
    """A loader factory: the user's DataLoader, with their own collate."""
    return DataLoader(SleepyDataset(0.0, n=400), batch_size=batch_size, num_workers=num_workers, shuffle=True,
                      collate_fn=lambda items: {"x": torch.stack([s["x"] for s in items])})


def stubborn_loader(num_workers: int, batch_size: int) -> DataLoader:
    """A loader factory that ignores the worker count it is asked for."""
    return DataLoader(SleepyDataset(0.0, n=100), batch_size=batch_size, num_workers=0)


def empty_dataset() -> Dataset:
    return SleepyDataset(0.0, n=0)


def words_dataset() -> Dataset:
    return Words()


def broken_dataset() -> Dataset:
    return Broken(0.0, n=100)


def not_a_dataset() -> int:
    return 42


def needs_a_path(path: str) -> Dataset:
    return SleepyDataset()


def train_step(batch: dict) -> None:
    time.sleep(0.002)


def nan_step(batch: dict) -> None:
    raise FloatingPointError("loss is nan")


def fails_on_three(batch: dict) -> None:
    """A train_step that cannot take a batch of 3."""
    if batch["x"].shape[0] == 3:
        raise ValueError("shape mismatch: expected a multiple of 2")
