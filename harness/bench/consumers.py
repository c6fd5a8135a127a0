"""Consumers of batches: the accelerator, emulated (a timed sleep, as MLPerf Storage/DLIO do) or real
(a small per-track model doing forward + backward + SGD step on cuda when present, else cpu).

A consumer's step(batch) returns the seconds the device was busy with that batch: the sleep's
measured length, the host-measured step on cpu, or CUDA-event time on gpu (the host then waits for
the step to finish, so the loader's wait is never hidden behind asynchronous launches). Only the
training step is timed: host-side input preparation and the host-to-device copy come before it.
Consumer is what feeding needs of any of them; make_consumer builds one from a ConsumerSpec. A user's own
train_step(batch) is a consumer too (TimedStep, timed by feedtax); as_consumer makes one from what a user passes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn

from feedtax.loader import INDEX_KEY, STAGE_KEY
from feedtax.results.feeding import ConsumerSpec


class Consumer(Protocol):
    """What feeding a consumer needs: a step per batch returning the seconds it was busy, the FLOPs of a
    sample (None when unknown: no MFU) and the device it runs on ("emulated", "cpu", "cuda:0")."""

    flops_per_sample: float | None
    device: str

    def step(self, batch: dict) -> float: ...


class Drain:
    """A consumer that takes no time: the loader alone."""

    flops_per_sample = None
    device = "emulated"

    def step(self, batch: dict) -> float:
        return 0.0


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
    last_nominal_s: float | None = field(default=None, init=False)  # the last step's drawn duration (MLPerf's AU)
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
        self.last_nominal_s = self.draw()
        deadline = t0 + self.last_nominal_s
        while (left := deadline - time.perf_counter()) > 0:
            time.sleep(left)
        return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# Small real models, one per track (a cpu step about as long as an emulated one: docs/measurement.md)


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
    """The spectrogram [B,T,F]: as the transform left it, or computed here (on the host) from audio."""
    if "spec" in batch:
        return batch["spec"]
    from feedtax.loader import spectrogram

    specs = [spectrogram({"audio": a}, None)["spec"] for a in batch["audio"].numpy()]
    return torch.from_numpy(np.stack(specs))


def _tokens(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(input ids, target ids): as the transform left them, or the sequence shifted by one here."""
    if "input" in batch:
        return batch["input"], batch["target"]
    t = batch["tokens"].long()
    return t[:, :-1], t[:, 1:]


def _uses_sdpa(model: nn.Module) -> bool:
    """Whether the model calls scaled-dot-product attention (every nn.MultiheadAttention does)."""
    return any(isinstance(m, nn.MultiheadAttention) for m in model.modules())


class ModelConsumer:
    """A real model for a track, trained one SGD step per batch (forward, loss, backward, update).

    Only the step is timed: the inputs are prepared on the host (spectrogram, uint8 -> float) and
    copied to the device before the timed window opens, so host work never counts as device busy.
    """

    def __init__(self, track: str, device: str | None = None, seed: int = 0):
        torch.manual_seed(seed)
        self.track = track
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = {"cloud": TokenBlock, "edge": FrameNet, "mobile": FrameNet, "tiny": DSCNN}[track]().to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        self.flops_per_sample: float | None = None
        self.flops_batch_size: int | None = None

    @property
    def precision(self) -> str:
        """The arithmetic the step's bulk runs in on this device, for the MFU peak: on cuda torch's
        defaults let cuDNN convolutions (and matmuls, where allowed) use TF32 tensor cores."""
        if not self.device.startswith("cuda"):
            return "fp32"
        convs = any(isinstance(m, nn.Conv2d) for m in self.model.modules())
        tf32 = torch.backends.cudnn.allow_tf32 if convs else torch.backends.cuda.matmul.allow_tf32
        return "tf32" if tf32 else "fp32"

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, ...]:
        """The step's input tensors, prepared on the host and moved to the device (untimed)."""
        batch = {k: v for k, v in batch.items() if k not in (STAGE_KEY, INDEX_KEY)}
        if self.track == "cloud":
            inp, target = _tokens(batch)
            host = (inp, target[:, : self.model.context].long() % self.model.hashed_vocab)
        elif self.track in ("edge", "mobile"):
            host = (_frames(batch, "frame" if self.track == "edge" else "crop"),)
        else:
            host = (_spec(batch),)
        return tuple(t.to(self.device, non_blocking=True) for t in host)

    def _loss(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The training loss on device-resident inputs (from _inputs)."""
        if self.track == "cloud":
            inp, tgt = inputs
            logits = self.model(inp)
            return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))
        return self.model(inputs[0]).logsumexp(dim=1).mean()

    def _train_step(self, inputs: tuple[torch.Tensor, ...]) -> None:
        """Forward, loss, backward and SGD update: the work that is timed (and counted)."""
        self.opt.zero_grad(set_to_none=True)
        self._loss(inputs).backward()
        self.opt.step()

    def _counted_step(self, inputs: tuple[torch.Tensor, ...], n: int) -> float:
        """One training step under the FLOP counter; FLOPs per sample.

        Attention runs on the math SDPA backend while counting: the fused cpu kernel is not
        registered with torch.utils.flop_counter, so its matmuls would count as zero.
        """
        from torch.utils.flop_counter import FlopCounterMode

        math_sdpa = _math_sdpa() if _uses_sdpa(self.model) else contextlib.nullcontext()
        with FlopCounterMode(display=False) as counter, math_sdpa:
            self._train_step(inputs)
        self.flops_per_sample = counter.get_total_flops() / max(n, 1)
        self.flops_batch_size = n
        return self.flops_per_sample

    def count_flops(self, batch: dict) -> float:
        """FLOPs of one training step on this batch, per sample (torch.utils.flop_counter); it trains."""
        return self._counted_step(self._inputs(batch), _batch_len(batch))

    def _sync(self) -> None:
        """Wait for the device's queued work (cuda), so the host clock covers it."""
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def _host_timed_s(self, fn: Callable[[], object]) -> float:
        """Seconds fn took by the host clock, the device drained before and after."""
        self._sync()
        t0 = time.perf_counter()
        fn()
        self._sync()
        return time.perf_counter() - t0

    def _event_timed_s(self, fn: Callable[[], object]) -> float:
        """Seconds between CUDA events around fn's work; the host waits for the end event."""
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

    def step(self, batch: dict) -> float:
        """One training step; seconds the device was busy (CUDA events on gpu, host clock on cpu).

        The first call's step is the FLOP-counting one (it trains too): its busy time is that step's,
        by the host clock, so the caller never books it as waiting.
        """
        inputs = self._inputs(batch)
        if self.flops_per_sample is None:
            return self._host_timed_s(lambda: self._counted_step(inputs, _batch_len(batch)))
        if self.device.startswith("cuda"):
            return self._event_timed_s(lambda: self._train_step(inputs))
        return self._host_timed_s(lambda: self._train_step(inputs))


def _math_sdpa():
    """A context in which scaled-dot-product attention decomposes into counted matmuls."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.MATH)


def _batch_len(batch: dict) -> int:
    for k, v in batch.items():
        if k not in (STAGE_KEY, INDEX_KEY) and hasattr(v, "shape") and len(v.shape):
            return int(v.shape[0])
    return 0


def make_consumer(spec: ConsumerSpec, track: str) -> EmulatedConsumer | ModelConsumer:
    """The consumer a spec asks for: the track's ModelConsumer on spec.device, or an EmulatedConsumer(spec.step_s)."""
    if spec.kind == "model":
        return ModelConsumer(track, device=spec.device)
    return EmulatedConsumer(spec.step_s or 0.0)


# ---------------------------------------------------------------------------------------------
# A user's own step


class TimedStep:
    """A user's train_step(batch) as a consumer: busy for as long as the call takes, CUDA synchronised around it
    on a GPU so the time is the device's work, not just its launch."""

    def __init__(self, fn: Callable[[Any], Any], device: str | None = None, flops_per_sample: float | None = None):
        self.fn, self.flops_per_sample = fn, flops_per_sample
        self.device = device or _default_device()

    def step(self, batch: Any) -> float:
        sync = _cuda_sync(self.device)
        sync()
        t0 = time.perf_counter()
        self.fn(batch)
        sync()
        return time.perf_counter() - t0


def as_consumer(consumer: Any, *, device: str | None = None, flops_per_sample: float | None = None) -> Consumer:
    """A consumer from what a user passes: a consumer as it is, a callable timed by feedtax, or seconds per step."""
    if isinstance(consumer, (int, float)) and not isinstance(consumer, bool):
        if not consumer >= 0:
            raise ValueError(f"an emulated step must be >= 0 seconds, got {consumer!r}")
        return EmulatedConsumer(float(consumer), flops_per_sample=flops_per_sample)
    if callable(getattr(consumer, "step", None)):
        return consumer
    if callable(consumer):
        return TimedStep(consumer, device, flops_per_sample)
    raise TypeError(f"a consumer is an object with step(batch), a function train_step(batch) or seconds per step; "
                    f"got {type(consumer).__name__}")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _cuda_sync(device: str) -> Callable[[], None]:
    """torch.cuda.synchronize for a CUDA device that has been used, else a no-op."""
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        return lambda: None
    return lambda: torch.cuda.synchronize(torch.device(device)) if torch.cuda.is_initialized() else None
