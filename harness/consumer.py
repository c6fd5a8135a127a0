"""Consumers of batches: the accelerator, emulated (a timed sleep, as MLPerf Storage/DLIO do) or real
(a small per-track model doing forward + backward + SGD step on cuda when present, else cpu).

A consumer's step(batch) returns the seconds the device was busy with that batch: the sleep's
measured length, the host-measured step on cpu, or CUDA-event time on gpu (the host then waits for
the step to finish, so the loader's wait is never hidden behind asynchronous launches).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from harness.loader import INDEX_KEY, STAGE_KEY


@dataclass
class EmulatedConsumer:
    """An accelerator that takes step_s per batch; with jitter_s > 0, each step is drawn from a
    normal(step_s, jitter_s) clipped at 0, from a seeded generator (distribution="normal"), or
    uniform over step_s +- jitter_s (distribution="uniform")."""

    step_s: float
    jitter_s: float = 0.0
    distribution: Literal["normal", "uniform"] = "normal"
    seed: int = 0
    device: str = "emulated"
    flops_per_sample: float | None = None
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.step_s < 0 or self.jitter_s < 0:
            raise ValueError("step_s and jitter_s must be >= 0")
        self._rng = np.random.default_rng(self.seed)

    def draw(self) -> float:
        """The next step's nominal duration."""
        if self.jitter_s == 0:
            return self.step_s
        if self.distribution == "uniform":
            return max(0.0, float(self._rng.uniform(self.step_s - self.jitter_s, self.step_s + self.jitter_s)))
        return max(0.0, float(self._rng.normal(self.step_s, self.jitter_s)))

    def step(self, batch: dict) -> float:
        """Be busy for one step (sleep until a deadline, so overshoot is not cumulative); seconds busy."""
        t0 = time.perf_counter()
        deadline = t0 + self.draw()
        while (left := deadline - time.perf_counter()) > 0:
            time.sleep(left)
        return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Small real models, one per track (sized so a cpu step on 2 cores takes ~5-50 ms at batch 16-32)


class TokenBlock(nn.Module):
    """One pre-norm transformer block over token ids: embed, attention, MLP, next-token head."""

    def __init__(self, hashed_vocab: int = 512, dim: int = 64, heads: int = 4, context: int = 64):
        super().__init__()
        self.hashed_vocab = hashed_vocab  # ids are hashed into a small table: the head stays small
        self.context = context  # trains on the first `context` positions of each sequence
        self.embed = nn.Embedding(hashed_vocab, dim)
        self.pos = nn.Embedding(context, dim)
        self.block = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.head = nn.Linear(dim, hashed_vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : self.context].long() % self.hashed_vocab
        x = self.embed(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
        mask = nn.Transformer.generate_square_subsequent_mask(ids.shape[1], device=ids.device)
        return self.head(self.block(x, src_mask=mask, is_causal=True))


class FrameNet(nn.Module):
    """A small conv net on 3xHxW frames: three conv-BN-ReLU stages, pooled, 10-way head."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        layers, c = [], 3
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, stride=2, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
            c = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class DSCNN(nn.Module):
    """DS-CNN-like keyword-spotting net (Zhang et al. 2017, "Hello Edge") on a spectrogram [T, F]."""

    def __init__(self, width: int = 24, blocks: int = 2, classes: int = 12):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        ds = []
        for _ in range(blocks):
            ds += [nn.Conv2d(width, width, 3, padding=1, groups=width), nn.BatchNorm2d(width), nn.ReLU(),
                   nn.Conv2d(width, width, 1), nn.BatchNorm2d(width), nn.ReLU()]
        self.body = nn.Sequential(*ds)
        self.head = nn.Linear(width, classes)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.stem(spec.unsqueeze(1))).mean(dim=(2, 3)))


def _frames(batch: dict, name: str) -> torch.Tensor:
    """A frame field as float [B,3,H,W]: as the transform left it, or normalized here from uint8 HWC."""
    x = batch[name]
    if x.dtype == torch.uint8:
        x = (x.permute(0, 3, 1, 2).float() / 255.0 - 0.5) * 4.0
    return x


def _spec(batch: dict) -> torch.Tensor:
    if "spec" in batch:
        return batch["spec"]
    from harness.loader import spectrogram

    specs = [spectrogram({"audio": a}, None)["spec"] for a in batch["audio"].numpy()]
    return torch.from_numpy(np.stack(specs))


def _tokens(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    if "input" in batch:
        return batch["input"], batch["target"]
    t = batch["tokens"].long()
    return t[:, :-1], t[:, 1:]


class ModelConsumer:
    """A real model for a track, trained one SGD step per batch (forward, loss, backward, update)."""

    def __init__(self, track: str, device: str | None = None, seed: int = 0):
        torch.manual_seed(seed)
        self.track = track
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = {"cloud": TokenBlock, "edge": FrameNet, "mobile": FrameNet, "tiny": DSCNN}[track]().to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        self.flops_per_sample: float | None = None
        self.flops_batch_size: int | None = None

    def _loss(self, batch: dict) -> torch.Tensor:
        batch = {k: v for k, v in batch.items() if k not in (STAGE_KEY, INDEX_KEY)}
        dev = self.device
        if self.track == "cloud":
            inp, target = _tokens(batch)
            logits = self.model(inp.to(dev, non_blocking=True))
            tgt = (target[:, : self.model.context].long() % self.model.hashed_vocab).to(dev, non_blocking=True)
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        if self.track in ("edge", "mobile"):
            x = _frames(batch, "frame" if self.track == "edge" else "crop").to(dev, non_blocking=True)
            return self.model(x).logsumexp(dim=1).mean()
        return self.model(_spec(batch).to(dev, non_blocking=True)).logsumexp(dim=1).mean()

    def _train_step(self, batch: dict) -> None:
        self.opt.zero_grad(set_to_none=True)
        self._loss(batch).backward()
        self.opt.step()

    def count_flops(self, batch: dict) -> float:
        """FLOPs of one training step on this batch, per sample (torch.utils.flop_counter)."""
        from torch.utils.flop_counter import FlopCounterMode

        n = _batch_len(batch)
        with FlopCounterMode(display=False) as counter:
            self._train_step(batch)
        self.flops_per_sample = counter.get_total_flops() / max(n, 1)
        self.flops_batch_size = n
        return self.flops_per_sample

    def step(self, batch: dict) -> float:
        """One training step; seconds the device was busy (CUDA events on gpu, host clock on cpu)."""
        if self.flops_per_sample is None:
            self.count_flops(batch)  # the counting step also trains; it is the first, a warm-up
        if self.device.startswith("cuda"):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            self._train_step(batch)
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0
        t0 = time.perf_counter()
        self._train_step(batch)
        return time.perf_counter() - t0


def _batch_len(batch: dict) -> int:
    for k, v in batch.items():
        if k not in (STAGE_KEY, INDEX_KEY) and hasattr(v, "shape") and len(v.shape):
            return int(v.shape[0])
    return 0


def make_consumer(kind: Literal["emulated", "model"], *, track: str = "edge", step_s: float = 0.01,
                  device: str | None = None, jitter_s: float = 0.0, seed: int = 0):
    """An EmulatedConsumer(step_s) or a ModelConsumer for the track."""
    if kind == "emulated":
        return EmulatedConsumer(step_s, jitter_s=jitter_s, seed=seed)
    return ModelConsumer(track, device=device, seed=seed)
