"""The public Python API: the feeding tax of anyone's own pipeline, measured as feedtax measures its own.

    import feedtax
    result = feedtax.measure(my_dataloader, train_step, warmup_steps=5, steps=50)
    print(result.feeding_tax, result.samples_per_s)

The loader is any iterable of batches (a torch DataLoader, a generator factory: anything iter() can restart);
the consumer is a feedtax consumer (``step(batch) -> busy seconds``), a plain ``train_step(batch)`` that feedtax
times (synchronising CUDA around it, so asynchronous launches never hide the wait), or a number: an emulated
accelerator that is busy that many seconds per batch (as MLPerf Storage and DLIO emulate one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from feedtax.bench.consumers import Consumer, TimedStep, as_consumer
from feedtax.bench.feeding import FeedingError, FeedingResult, measure_feeding
from feedtax.bench.ranks import measure_ranks, wants_gather
from feedtax.formats.base import ShardError
from feedtax.vocabulary import StopRule


class _Guarded:
    """A consumer whose failure is reported as the consumer's, with the step it failed at."""

    def __init__(self, consumer: Consumer):
        self.consumer, self.steps = consumer, 0
        self.flops_per_sample = getattr(consumer, "flops_per_sample", None)
        self.device = getattr(consumer, "device", "unknown")

    def step(self, batch: Any) -> float:
        self.steps += 1
        try:
            busy = self.consumer.step(batch)
        except Exception as exc:
            raise FeedingError(f"the consumer raised at step {self.steps}: {type(exc).__name__}: {exc}") from exc
        try:
            return float(busy)
        except (TypeError, ValueError):
            raise FeedingError(f"the consumer's step returned {busy!r}, not the seconds it was busy (a number); "
                               "pass a plain function to have feedtax time it") from None


class _GuardedLoader:
    """The user's loader, whose failure is reported as the loader's, with the batch it failed at."""

    def __init__(self, loader: Iterable):
        self.loader, self.batches = loader, 0

    def __iter__(self) -> Iterator:
        try:
            it = iter(self.loader)
        except Exception as exc:
            raise FeedingError(f"the loader cannot be iterated: {type(exc).__name__}: {exc}") from exc
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except ShardError:
                raise  # already names the shard, the position and the problem
            except Exception as exc:
                raise FeedingError(f"the loader raised at batch {self.batches + 1}: {type(exc).__name__}: {exc}") \
                    from exc
            self.batches += 1
            yield batch


def measure(
    loader: Iterable,
    consumer: Consumer | Callable[[Any], Any] | float,
    *,
    warmup_steps: int = 5,
    steps: int = 50,
    batch_size_of: Callable[[Any], int] | None = None,
    device: str | None = None,
    flops_per_sample: float | None = None,
    peak_flop_per_s: float | None = None,
    nvml: bool = True,
    keep_timeline: bool = True,
    distributed: bool | None = None,
    stop: StopRule | None = None,
) -> FeedingResult:
    """Feed `steps` batches (after `warmup_steps`, excluded) from loader to consumer and say how long it waited.

    consumer: an object with step(batch) -> busy seconds, a plain train_step(batch) that feedtax times, or a
    number of seconds per batch (an emulated accelerator). batch_size_of(batch) -> samples, for batches whose
    first tensor does not lead with the batch dimension. device: where a plain train_step runs (default: cuda
    when torch sees a GPU, else cpu); on cuda NVML samples the GPU (nvml=False: not) and MFU needs
    flops_per_sample and peak_flop_per_s. Returns AU, the feeding tax, samples/s, wait/compute/wall and the
    per-step timeline; AU and the feeding tax each with its 95% interval (au_ci95, feeding_tax_ci95: a block
    bootstrap over the measured steps). stop: a feedtax.vocabulary.StopRule makes `steps` the minimum and measures
    on until the AU's interval is narrower than stop.au_ci_pp, or a cap (au_ci_wide marks a run still wider; one
    process only: with ranks gathered, every rank runs `steps`, as a step that synchronises the ranks needs).
    Raises FeedingError naming the loader or the consumer when either fails, for a loader that
    yields nothing, and for batches with no tensor in them.
    distributed: under an initialised torch.distributed process group (None: gather when there is one; False:
    never; True: require one) every rank measures its own loader and consumer, starting together, and every rank
    gets all ranks' figures in .ranks, .slowest_rank and .world_samples_per_s (docs/ranks.md); a rank that raises,
    or does not arrive within the group's timeout, makes every rank raise a FeedingError naming it.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a whole number >= 1, got {steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be a whole number >= 0, got {warmup_steps!r}")
    gather = wants_gather(distributed)
    cons = _Guarded(as_consumer(consumer, device=device, flops_per_sample=flops_per_sample))

    def run() -> FeedingResult:
        sampler = None
        if nvml and str(cons.device).startswith("cuda") and _cuda_available():
            from feedtax.probes.nvml import cuda_sampler

            sampler = cuda_sampler(cons.device)()
        return measure_feeding(_GuardedLoader(loader), cons, warmup_steps=warmup_steps, steps=steps,
                               peak_flop_per_s=peak_flop_per_s, sampler=sampler, keep_timeline=keep_timeline,
                               batch_size_of=batch_size_of, stop=None if gather else stop)

    return measure_ranks(run, device=str(cons.device)) if gather else run()


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


__all__ = ["FeedingError", "FeedingResult", "TimedStep", "as_consumer", "measure"]
