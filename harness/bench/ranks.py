"""Several ranks (data-parallel training): each rank measures its own feeding, then every rank gets every rank's.

The slowest rank (the longest measured wall) sets the step: in training the others wait for it at the gradient
all-reduce. The process group's timeout (init_process_group(timeout=...)) bounds every wait here, so a rank that
raises, dies or hangs is reported as a FeedingError on every rank that can still hear of it. docs/ranks.md explains.
Also what `feedtax sweep --dataset` needs under torchrun: its environment, the group started from it, a gather of
any figures, and a failing rank's leave-taking.
"""

from __future__ import annotations

import itertools
import os
import pickle
import re
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch.distributed as dist

from feedtax.results.feeding import RankFeeding

if TYPE_CHECKING:
    from feedtax.bench.feeding import FeedingResult


def in_process_group() -> bool:
    """Whether a torch.distributed process group is initialised in this process."""
    return dist.is_available() and dist.is_initialized()


def wants_gather(distributed: bool | None) -> bool:
    """Whether to gather the ranks: None gathers when a process group is initialised, False never, True requires
    one (a ValueError without)."""
    if distributed is not None and not isinstance(distributed, bool):
        raise TypeError(f"distributed must be True, False or None, got {distributed!r}")
    if distributed is None:
        return in_process_group()
    if distributed and not in_process_group():
        raise ValueError("distributed=True needs an initialised process group: call "
                         "torch.distributed.init_process_group first (torchrun sets its environment)")
    return distributed


def measure_ranks(run: Callable[[], FeedingResult], device: str) -> FeedingResult:
    """run() on this rank, started together with the other ranks, then every rank's figures gathered to every
    rank: this rank's result with .ranks, .slowest_rank and .world_samples_per_s. Raises FeedingError (one line,
    naming the rank) when any rank raised, or did not reach the start or the end within the group's timeout."""
    FeedingError = _feeding_error()
    sync = _Sync()
    host = socket.gethostname()
    sync.barrier("the start of the measurement")
    result, failure = None, None
    try:
        result = run()
        sent: tuple[bool, Any] = (True, _row(result, sync.rank, sync.world, host, device).model_dump())
    except Exception as exc:
        failure, sent = exc, (False, f"rank {sync.rank} of {sync.world} (host {host}) failed: {_one_line(exc)}")
    try:
        sync.post("results", sent)
        sync.barrier("the end of the measurement")
        got = sync.collect("results")
    except (FeedingError, RuntimeError) as exc:
        if failure is not None:
            raise FeedingError(sent[1]) from exc  # this rank's own failure says the most
        if isinstance(exc, FeedingError):
            raise
        raise FeedingError(f"rank {sync.rank} of {sync.world}: the ranks' results could not be gathered: "
                           f"{_gloo_line(exc)}") from exc
    failed = [payload for ok, payload in got if not ok]
    if failed:
        raise FeedingError("; ".join(failed)) from failure
    rows = [RankFeeding(**payload) for _, payload in got]
    return result.model_copy(update=world_fields(rows))


_GATHERS = itertools.count()  # every rank gathers in the same order, so the n-th gathers meet


def gather(payload: Any, what: str) -> list[Any]:
    """Every rank's payload on every rank, in rank order, through the group's store (see _Sync.post); a FeedingError
    naming this rank and `what` when the ranks cannot all be heard."""
    rank, world = dist.get_rank(), dist.get_world_size()
    _, timeout = _gather_group()
    prefix, store = f"feedtax/gather/{next(_GATHERS)}", _store()
    try:
        if store is None:
            return _all_gather(payload, world)
        _put(store, prefix, rank, payload)
        keys = [f"{prefix}/{r}" for r in range(world)]
        if timeout is None:
            store.wait(keys)
        else:
            store.wait(keys, timeout)
        return _take(store, prefix, world)
    except RuntimeError as exc:
        raise _feeding_error()(f"rank {rank} of {world}: {what} could not be gathered: {_gloo_line(exc)}") from exc


def _put(store: Any, prefix: str, rank: int, payload: Any) -> None:
    """This rank's payload in the store, pickled, under prefix/rank."""
    store.set(f"{prefix}/{rank}", pickle.dumps(payload))


def _take(store: Any, prefix: str, world: int) -> list[Any]:
    """Every rank's payload from the store (each under prefix/rank), in rank order."""
    return [pickle.loads(store.get(f"{prefix}/{r}")) for r in range(world)]


def _all_gather(payload: Any, world: int) -> list[Any]:
    """all_gather_object over the gather group: where torch gives no store."""
    got: list[Any] = [None] * world
    dist.all_gather_object(got, payload, group=_gather_group()[0])
    return got


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK); None outside it.
    A ValueError names a variable that is not a whole number."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return None
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    values = [os.environ.get(n, os.environ["RANK"]) for n in names]
    try:
        return int(values[0]), int(values[1]), int(values[2])
    except ValueError:
        raise ValueError("torchrun's environment: " + ", ".join(f"{n}={v!r}" for n, v in zip(names, values,
                         strict=True)) + ": expected whole numbers") from None


def init_from_env(backend: str, timeout_s: float) -> bool:
    """init_process_group(backend) from torchrun's environment (env://), unless a group is initialised already;
    whether this call started it (and so should destroy it)."""
    if in_process_group():
        return False
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return True


def leave(lead: bool, timeout_s: float) -> None:
    """Before a rank exits on an error: torchrun ends every rank once one exits with an error, so the other ranks
    wait (at most timeout_s) until rank 0 (`lead`) marks in the group's store that it has saved and said what it
    measured. Nothing when no group is initialised, or its store is gone."""
    if not in_process_group():
        return
    store, key = _store(), "feedtax/leave/lead-done"
    try:
        if lead:
            store.set(key, "1")
        else:
            store.wait([key], timedelta(seconds=timeout_s))
    except Exception:  # rank 0 or the store gone: nothing left to wait for
        pass


def world_fields(rows: list[RankFeeding]) -> dict[str, Any]:
    """The ranks, the slowest to be fed (the longest wait for data; then the longest wall) and what the job
    delivers: every rank's samples over the longest wall. With a step that synchronises the ranks (DDP's
    all-reduce) the walls come out equal and the fast ranks' wait hides in their step: the wait still names the
    rank whose loader holds the job back."""
    slowest = max(rows, key=lambda r: (r.wait_s, r.wall_s, -r.rank))
    longest = max(r.wall_s for r in rows)
    world = sum(r.samples for r in rows) / longest if longest > 0 else 0.0
    return {"ranks": rows, "slowest_rank": slowest.rank, "world_samples_per_s": world}


def _row(result: FeedingResult, rank: int, world: int, host: str, device: str) -> RankFeeding:
    return RankFeeding(
        rank=rank, world_size=world, hostname=host, device=device, steps=result.steps,
        samples=round(result.samples_per_s * result.wall_s), feeding_tax=result.feeding_tax, au=result.au,
        au_ci95=result.au_ci95, feeding_tax_ci95=result.feeding_tax_ci95,
        samples_per_s=result.samples_per_s, wait_s=result.wait_s, compute_s=result.compute_s,
        wall_s=result.wall_s, median_step_wall_s=result.step_wall_s.median)


_CALLS = itertools.count()  # every rank calls measure in the same order, so the n-th calls meet


class _Sync:
    """This call's meeting points: gloo barriers bounded by the group's timeout, each rank marking in the group's
    store that it reached a point, so a rank that gave up waiting can name the ranks that never came; and the
    ranks' results, exchanged through that store."""

    def __init__(self) -> None:
        self.group, self.timeout = _gather_group()
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.prefix = f"feedtax/measure/{next(_CALLS)}"
        self.store = _store()

    def barrier(self, what: str) -> None:
        """Wait for every rank at `what`; a FeedingError naming the missing ranks when they do not all come."""
        self._mark(what)
        try:
            dist.monitored_barrier(group=self.group, timeout=self.timeout, wait_all_ranks=True)
        except RuntimeError as exc:
            raise _feeding_error()(f"rank {self.rank} of {self.world}: {self._who(what, exc)} "
                                   "(init_process_group(timeout=...) sets the timeout)") from exc

    def post(self, what: str, payload: Any) -> None:
        """Leave this rank's payload in the store, for collect() after a barrier. Not all_gather_object: gloo's
        worker thread frees an all-gather's tensors after the ranks have their results, and when that is the job's
        last collective and the interpreter is already exiting, it aborts the process (SIGABRT, about 1 run in 20)."""
        self.payload = payload
        if self.store is not None:
            _put(self.store, f"{self.prefix}/{what}/payload", self.rank, payload)

    def collect(self, what: str) -> list[Any]:
        """Every rank's posted payload, in rank order (after a barrier that every rank passed once it posted)."""
        if self.store is None:
            return _all_gather(self.payload, self.world)
        return _take(self.store, f"{self.prefix}/{what}/payload", self.world)

    def _who(self, what: str, exc: RuntimeError) -> str:
        """Who did not come to `what`: from the store's marks, else from gloo's monitored barrier on rank 0."""
        within = f"within {self.timeout.total_seconds():g} s" if self.timeout is not None else "within the timeout"
        missing = self._missing(what)
        if missing is None:
            named = re.search(r"Ranks? ([\d, ]+) failed to pass", str(exc))
            missing = [int(r) for r in named.group(1).replace(",", " ").split()] if named else None
        if missing:
            ranks = ", ".join(str(r) for r in missing)
            return (f"rank{'s' if len(missing) > 1 else ''} {ranks} did not reach {what} {within}: "
                    "died, hung, raised outside feedtax.measure or still measuring")
        if missing == []:
            return (f"every rank reached {what}, but the others gave up before this one came, or one died "
                    f"there ({within}): {_gloo_line(exc)}")
        return f"the ranks did not all reach {what} {within}: {_gloo_line(exc)}"

    def _mark(self, what: str) -> None:
        try:
            self.store.set(f"{self.prefix}/{what}/{self.rank}", "1")
        except Exception:  # no store, or it went away with its host: the marks are a help, not a need
            pass

    def _missing(self, what: str) -> list[int] | None:
        """The ranks that did not mark `what`; None when the store cannot say."""
        try:
            return [r for r in range(self.world) if not self.store.check([f"{self.prefix}/{what}/{r}"])]
        except Exception:
            return None


def _store() -> Any:
    """The default group's key-value store (None where torch does not give it)."""
    try:
        return dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):
        return None


_SIDE: list[tuple[Any, Any]] = []  # (the default group, the gloo group made beside it)


def _gather_group() -> tuple[Any, timedelta | None]:
    """The group to gather over (None: the default one, when it is gloo; else a gloo group beside it, made once)
    and the default group's timeout, which the gloo group inherits."""
    world = dist.group.WORLD
    timeout = _timeout(world)
    if dist.get_backend() == "gloo":
        return None, timeout
    if not _SIDE or _SIDE[0][0] is not world:
        _SIDE[:] = [(world, dist.new_group(backend="gloo", timeout=timeout))]
    return _SIDE[0][1], timeout


def _timeout(group: Any) -> timedelta | None:
    """The timeout the group was initialised with (None where torch does not say: torch's default then applies)."""
    try:
        for device in group._device_types:
            options = getattr(group._get_backend(device), "options", None)
            if options is not None:
                return options._timeout
    except (AttributeError, RuntimeError):
        pass
    return None


def _feeding_error() -> type[Exception]:
    """FeedingError, imported when needed: feeding imports this module for RankFeeding."""
    from feedtax.bench.feeding import FeedingError

    return FeedingError


def _one_line(exc: BaseException) -> str:
    """An error as one line: its message (a FeedingError's names what failed), else its type and message."""
    text = " ".join(str(exc).split())
    if isinstance(exc, _feeding_error()):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _gloo_line(exc: BaseException) -> str:
    """A process-group error's first sentence, without gloo's source location: what happened, not the advice."""
    text = re.sub(r"^\[[^\]]*\.(?:cc|cpp|h):\d+\]\s*", "", " ".join(str(exc).split()))
    return re.split(r"(?<=\.)\s", text, maxsplit=1)[0] or type(exc).__name__


__all__ = ["RankFeeding", "gather", "in_process_group", "init_from_env", "leave", "measure_ranks", "torchrun_env",
           "wants_gather", "world_fields"]
