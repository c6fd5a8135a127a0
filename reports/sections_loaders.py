"""The DataLoader a student writes beside feedtax's tuned one: both AUs side by side at every sweep point, and where
the default trails, why and the fixes measured. Nothing when the run swept one loader only."""

from __future__ import annotations

from html import escape

from feedtax.reports import text
from feedtax.reports.common import WIDE_LEGEND, Markup, pct, pct_ci, table
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
        rows.append([d.track, d.format, d.num_workers, d.dataset_access or "—",
                     pct_ci(d.au, d.au_ci95, d.au_ci_wide, 0), pct(d.mlperf_au),
                     pct_ci(t.au, t.au_ci95, t.au_ci_wide, 0), pct(t.mlperf_au),
                     f"{(t.au - d.au) * 100:+.1f}"])
    parts = ["<h3 id='loaders'>The DataLoader you would write, beside feedtax's</h3>",
             text.LOADERS_INTRO.format(gap=GAP_PP),
             table(["track", "format", "workers", "default's dataset", "default AU", "default AU (MLPerf)",
                    "tuned AU", "tuned AU (MLPerf)", "tuned − default (pp)"], rows, left=2, text=(3,))]
    if any(r.au_ci95 is not None for r in results.loader):
        parts.append(f"<p>{escape(WIDE_LEGEND)}.</p>")
    gaps = results.feeding.loader_gaps if results.feeding else []
    for key in dict.fromkeys((g.track, g.format) for g in gaps):
        parts.append(_gaps([g for g in gaps if (g.track, g.format) == key], results))
    if not gaps:
        parts.append(text.LOADERS_NO_GAP.format(gap=GAP_PP))
    return parts


def _ms(s: float | None) -> str:
    return "—" if s is None else f"{s * 1e3:.2f} ms"


def _gaps(gaps: list[LoaderGap], results: Results) -> str:
    """One track and format's gaps: per worker count both AUs, the per-batch costs and what the consumer waits on;
    why, once per cost; then every fix tried with its AU and the best one where it beats the noise."""
    g0 = gaps[0]
    access = next((r.dataset_access for r in results.loader if r.loader == "default" and r.format == g0.format), None)
    stages = list(dict.fromkeys(k for g in gaps for k in g.costs()))
    head = (f"<h4>{escape(g0.track)} {escape(g0.format)}: the default loader trails at {len(gaps)} worker "
            f"count{'s' if len(gaps) > 1 else ''}</h4>")
    costs = table(["workers", "default AU", "tuned AU", "gap (pp)", "waits on"]
                  + [f"{k} per batch of {g0.batch_size}: default / tuned" for k in stages],
                  [[g.num_workers, pct_ci(g.default_au, g.default_au_ci95, digits=0),
                    pct_ci(g.tuned_au, g.tuned_au_ci95, digits=0), f"{g.gap_pp:.1f}", g.main_cost() or "—"]
                   + [_pair(g.costs().get(k)) for k in stages] for g in gaps], left=1, text=(4,))
    why = "".join(text.LOADER_WHY.format(
        workers=", ".join(str(g.num_workers) for g in gaps if g.main_cost() == main), stage=main,
        why=WHY[main].format(access=escape(ACCESS.get(access, access)), threads=g0.intra_op_threads))
        for main in dict.fromkeys(g.main_cost() for g in gaps if g.main_cost()))
    if not any(g.main_cost() for g in gaps):
        why = text.LOADER_WHY_NONE
    bound = "".join(text.LOADER_BOUND.format(workers=g.num_workers, rate=g.default_ingestion_samples_per_s,
                                             need=g.consumption_samples_per_s)
                    for g in gaps if g.loader_bound and g.num_workers)
    fixes = table(["workers", "fix", "as code", "AU", "AU (MLPerf)", "change (pp)", "beats the noise"],
                  [[g.num_workers, f.fix, Markup(f"<code>{escape(f.code)}</code>"), pct_ci(f.au, f.au_ci95, digits=0),
                    pct(f.mlperf_au), f"{g.gain_pp(f):+.1f}", "yes" if g.beats_noise(f) else "no"]
                   for g in gaps for f in g.fixes], left=3) if any(g.fixes for g in gaps) else ""
    return head + costs + why + bound + fixes


def _pair(costs: tuple[float, float] | None) -> str:
    return "—" if costs is None else f"{_ms(costs[0])} / {_ms(costs[1])}"
