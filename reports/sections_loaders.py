"""The DataLoader a student writes beside feedtax's tuned one: both AUs side by side at every sweep point, and where
the default trails, why and the fixes measured. Nothing when the run swept one loader only."""

from __future__ import annotations

from html import escape

from feedtax.reports import text
from feedtax.reports.common import Markup, pct, table
from feedtax.results.loaders import LoaderGap
from feedtax.results.schema import Results
from feedtax.vocabulary import GAP_PP

WHY = {
    "fetch": ("its dataset reads and transforms every sample alone ({access}), where the tuned loader decodes whole "
              "runs of a shard at once; more workers, or a Dataset that returns whole batches, pays it less often"),
    "collate": ("default_collate stacks the batch in the main process on {threads} intra-op threads, which have gone "
                "to sleep during the consumer's step and must wake first; one thread "
                "(<code>torch.set_num_threads(1)</code>) or a worker takes it off the consumer's path"),
    "handover": ("each batch crosses from its worker in new shared-memory tensors (torch's default), where the tuned "
                 "loader reuses shared-memory slots; a larger batch pays it less often"),
}
ACCESS = {"index": "map-style, the codec's read_sample per item", "stream": "an IterableDataset over the codec's "
          "sample stream", None: "as a student writes it"}


def loaders(results: Results) -> list[str]:
    """Both loaders' AUs per point, then each gap with its measured costs and fixes."""
    kinds = {r.loader for r in results.loader}
    if kinds != {"default", "tuned"}:
        return []
    tuned = {(r.track, r.format, r.num_workers): r for r in results.tuned_rows()}
    rows = []
    for d in (r for r in results.loader if r.loader == "default"):
        t = tuned.get((d.track, d.format, d.num_workers))
        if t is None:
            continue
        rows.append([d.track, d.format, d.num_workers, d.dataset_access or "—", pct(d.au), _mlperf(d), pct(t.au),
                     _mlperf(t), f"{(t.au - d.au) * 100:+.1f}"])
    parts = ["<h3 id='loaders'>The DataLoader you would write, beside feedtax's</h3>",
             text.LOADERS_INTRO.format(gap=GAP_PP),
             table(["track", "format", "workers", "default's dataset", "default AU", "default AU (MLPerf)",
                    "tuned AU", "tuned AU (MLPerf)", "tuned − default (pp)"], rows, left=2, text=(3,))]
    gaps = results.feeding.loader_gaps if results.feeding else []
    parts += [_gap(g, results) for g in gaps]
    if not gaps:
        parts.append(text.LOADERS_NO_GAP.format(gap=GAP_PP))
    return parts


def _mlperf(r) -> str:
    return pct(r.mlperf_au) if r.mlperf_au is not None else "—"


def _ms(s: float | None) -> str:
    return "—" if s is None else f"{s * 1e3:.2f} ms"


def _gap(g: LoaderGap, results: Results) -> str:
    """One gap: the costs per batch of both loaders, the one the consumer waits on and why, the fixes' AUs."""
    access = next((r.dataset_access for r in results.loader if r.loader == "default" and r.format == g.format), None)
    head = (f"<h4>{escape(g.track)} {escape(g.format)}, {g.num_workers} worker(s): default AU {pct(g.default_au)}, "
            f"tuned {pct(g.tuned_au)} ({g.gap_pp:.1f} pp)</h4>")
    costs = table(["per batch of " + str(g.batch_size), "default loader", "tuned loader"],
                  [[stage, _ms(d), _ms(t)] for stage, (d, t) in g.costs().items()], left=1)
    main = g.main_cost()
    why = (text.LOADER_WHY.format(stage=main, why=WHY[main].format(access=escape(ACCESS.get(access, access)),
                                                                      threads=g.intra_op_threads))
           if main else text.LOADER_WHY_NONE)
    bound = text.LOADER_BOUND.format(rate=g.default_ingestion_samples_per_s, need=g.consumption_samples_per_s) \
        if g.loader_bound and g.num_workers else ""
    fixes = table(["fix", "as code", "AU", "AU (MLPerf)", "change (pp)"],
                  [[f.fix, Markup(f"<code>{escape(f.code)}</code>"), pct(f.au),
                    pct(f.mlperf_au) if f.mlperf_au is not None else "—", f"{(f.au - g.default_au) * 100:+.1f}"]
                   for f in g.fixes], left=2) if g.fixes else ""
    best = g.best_fix()
    verdict = text.LOADER_BEST_FIX.format(fix=escape(best.fix), au=pct(best.au)) \
        if best is not None and (best.au - g.default_au) * 100 > GAP_PP else text.LOADER_NO_FIX
    return head + costs + why + bound + fixes + verdict
