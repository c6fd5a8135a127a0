"""The default loader beside the tuned one: where a student's plain DataLoader trails feedtax's, the measured
per-batch costs that differ and the AU of each fix tried (feedtax.bench.loadergap)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from feedtax.results.metrics import BATCH_S, AtLeastOne, Share, Workers
from feedtax.vocabulary import GAP_PP, SAMPLES_PER_S, UTILIZATION


class FixTrial(BaseModel):
    """The default loader's point rerun with one change a student can make, and the AU it gave."""

    fix: str = Field(description="what changed, in the vocabulary of torch's DataLoader (fixes in bench.loadergap)")
    code: str = Field(description="the change as a student writes it")
    au: Annotated[float, UTILIZATION]
    au_ci95: tuple[Share, Share] | None = Field(
        None, description="95% interval of au from the rerun's steps (as a loader row's); None before schema 6")
    mlperf_au: Annotated[float | None, UTILIZATION] = None
    mlperf_au_ci95: tuple[Share, Share] | None = Field(None, description="its 95% interval; None before schema 6")


class LoaderGap(BaseModel):
    """One sweep point where the default loader's AU trails the tuned one's by more than GAP_PP: the per-batch
    costs of the two, measured apart (ready samples in this process, ready batches through one worker), and fixes.

    fetch: reading and transforming a batch's samples (the default dataset per sample; the tuned loader's decode and
    transform stages); collate: forming the batch (default_collate's torch.stack, timed right after an idle as long
    as the consumer's step, as the main process meets it at 0 workers; the tuned loader's slot copy); handover: a
    ready batch from one worker to the main process at full speed (new shared-memory tensors per batch; the tuned
    loader's reused ring slots)."""

    track: str
    format: str
    num_workers: Workers
    batch_size: AtLeastOne
    default_au: Annotated[float, UTILIZATION]
    tuned_au: Annotated[float, UTILIZATION]
    default_au_ci95: tuple[Share, Share] | None = Field(
        None, description="the default loader's row's au_ci95; None before schema 6")
    tuned_au_ci95: tuple[Share, Share] | None = Field(
        None, description="the tuned loader's row's au_ci95; None before schema 6")
    default_ingestion_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="the default loader alone")
    consumption_samples_per_s: Annotated[float, SAMPLES_PER_S] = Field(description="what the consumer takes")
    intra_op_threads: AtLeastOne = Field(description="torch.get_num_threads() in the measuring process")
    default_fetch_s_per_batch: Annotated[float | None, BATCH_S] = None
    tuned_fetch_s_per_batch: Annotated[float | None, BATCH_S] = None
    default_collate_s_per_batch: Annotated[float | None, BATCH_S] = None
    tuned_collate_s_per_batch: Annotated[float | None, BATCH_S] = None
    default_handover_s_per_batch: Annotated[float | None, BATCH_S] = None
    tuned_handover_s_per_batch: Annotated[float | None, BATCH_S] = None
    fixes: list[FixTrial] = []

    @property
    def gap_pp(self) -> float:
        return (self.tuned_au - self.default_au) * 100

    def costs(self) -> dict[str, tuple[float, float]]:
        """stage -> (default, tuned) seconds per batch, for the stages measured for both."""
        pairs = {"fetch": (self.default_fetch_s_per_batch, self.tuned_fetch_s_per_batch),
                 "collate": (self.default_collate_s_per_batch, self.tuned_collate_s_per_batch),
                 "handover": (self.default_handover_s_per_batch, self.tuned_handover_s_per_batch)}
        return {k: (d, t) for k, (d, t) in pairs.items() if d is not None and t is not None}

    @property
    def loader_bound(self) -> bool:
        """The default loader alone delivers less than the consumer takes: its workers' own costs show as waits."""
        return self.default_ingestion_samples_per_s < self.consumption_samples_per_s

    def main_cost(self) -> str | None:
        """The stage whose per-batch cost the default loader pays most over the tuned one where the consumer waits
        for it: every stage at 0 workers or when loader-bound, else only the handover; None when none costs more."""
        waited = self.num_workers == 0 or self.loader_bound
        stages = {k: d - t for k, (d, t) in self.costs().items() if waited or k == "handover"}
        worst = max(stages, key=stages.get, default=None)
        return worst if worst is not None and stages[worst] > 0 else None

    def gain_pp(self, fix: FixTrial) -> float:
        """What a fix changed the default loader's AU by, in percentage points."""
        return (fix.au - self.default_au) * 100

    def beats_noise(self, fix: FixTrial) -> bool:
        """A fix that raised AU by more than GAP_PP: less is within a rerun's noise."""
        return self.gain_pp(fix) > GAP_PP

    def best_fix(self) -> FixTrial | None:
        """The fix with the highest AU, where it beats the noise; else None."""
        best = max(self.fixes, key=lambda f: f.au, default=None)
        return best if best is not None and self.beats_noise(best) else None
