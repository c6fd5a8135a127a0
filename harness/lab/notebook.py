"""The Data Engineering lab as a marimo app on this machine's measurements: three parts, each a Lock (a prediction
committed before any number shows), a Workbench of sliders driving instruments, and a Reflect question.

Run it with `feedtax lab [RESULTS.json]`; `marimo edit` on this file works too (pass `-- --results PATH`).
Everything the student does is saved to lab.json beside the results (feedtax.lab.session).
"""

import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="feedtax lab")


@app.cell
def _():
    from pathlib import Path

    import marimo as mo

    from feedtax.lab import session
    from feedtax.lab import workbench as wb
    from feedtax.reports.common import duration, human
    from feedtax.results.lab import LOCKS
    return LOCKS, Path, duration, human, mo, session, wb


@app.cell
def _(Path, mo, session, wb):
    results_path = Path(mo.cli_args().get("results") or "feedtax-out/results.json")
    mo.stop(not results_path.exists(), mo.callout(mo.md(
        f"No results at `{results_path}`. Run `feedtax run --profile ci` first, or start `feedtax lab RESULTS.json`."),
        kind="danger"))
    res = wb.load_run(results_path)
    lab = session.LabSession.open(res, results_path)
    get_commits, set_commits = mo.state(len(lab.record.locks))  # re-renders the Locks when one is committed
    mo.md(f"# The Data Engineering lab, on this machine's numbers\n\nRun `{res.run_id}` ({res.profile} profile, "
          f"{res.host.cpu_model or 'this CPU'}). Each part opens with a **Lock**: commit a prediction before any "
          f"number shows. What you do is saved to `{lab.path}`.")
    return get_commits, lab, res, set_commits


@app.cell
def _(LOCKS, mo):
    def lock_form(lock_id, labels):
        """The Lock: a choice and a confidence, submitted once (a form: its value is None until committed)."""
        question, choices = LOCKS[lock_id]
        return mo.md(f"**Lock.** {question}\n\n{{choice}}\n\n{{confidence}}").batch(
            choice=mo.ui.radio(options=dict(zip(labels, choices, strict=True))),
            confidence=mo.ui.radio(options=["low", "medium", "high"], value="medium", inline=True,
                                   label="How sure are you?"),
        ).form(submit_button_label="Commit my prediction", bordered=False)

    lock1 = lock_form("gravity", ["Stream it over fiber", "Ship hard drives"])
    lock2 = lock_form("format_vs_ssd", ["Switching JSON to Protobuf", "A faster SSD"])
    lock3 = lock_form("curated_vs_noisy", ["1 million noisy samples", "10,000 curated samples"])
    return lock1, lock2, lock3


@app.cell
def _(lab, lock1, lock2, lock3, set_commits):
    for _lock_id, _form in zip(("gravity", "format_vs_ssd", "curated_vs_noisy"), (lock1, lock2, lock3), strict=True):
        _v = _form.value
        if _v and _v["choice"] and lab.commit_lock(_lock_id, _v["choice"], _v["confidence"]):
            set_commits(len(lab.record.locks))
    return


@app.cell
def _(get_commits, lab, mo):
    def lock_view(lock_id, form, title, controls):
        get_commits()  # a dependency: this view follows every commit
        done = lab.lock(lock_id)
        head = mo.md(f"## {title}")
        if done is None:
            return mo.vstack([head, form, mo.md("*The workbench unlocks once you commit.*")])
        return mo.vstack([head, mo.callout(mo.md(f"You predicted **{done.choice}** ({done.confidence} confidence), "
                                                 f"committed {done.committed_utc}."), kind="info"), controls])

    def unlocked(lock_id):
        get_commits()
        return lab.lock(lock_id) is not None
    return lock_view, unlocked


@app.cell
def _(lock1, lock_view, part1):
    lock_view("gravity", lock1, "Part 1. Data Gravity Audit", part1)
    return


@app.cell
def _(mo, res, wb):
    size_log10 = mo.ui.slider(10, 16, step=0.5, value=15, show_value=True,
                              label="dataset size, log10 bytes (10 = 10 GB, 13 = 10 TB, 16 = 10 PB)")
    distance = mo.ui.slider(0, 20_000, step=100, value=4_700, label="shipping distance (km)", show_value=True)
    link = mo.ui.slider(steps=[10, 25, 40, 100], value=10, label="network link (Gbit/s)", show_value=True)
    drive = mo.ui.dropdown(options=wb.drive_choices(), value=wb.MEASURED_DISK if res.disk else "hdd",
                           label="drives written and read at")
    part1 = mo.vstack([size_log10, distance, link, drive])
    return distance, drive, link, part1, size_log10


@app.cell
def _(distance, drive, duration, human, lab, link, mo, reflect1, res, size_log10, unlocked, wb):
    mo.stop(not unlocked("gravity"))
    from feedtax.reports.mission_figures import size_label as _label  # matplotlib: only once a part is open
    from feedtax.reports.mission_figures import sneakernet_crossover as _crossover
    from feedtax.reports.mission_figures import transfer_time_radar as _radar
    _size = round(10 ** size_log10.value)
    _g = wb.gravity_tiers(res, distance.value, link.value, drive.value, sizes=[_size])
    _t = _g.tiers[0]
    lab.add_iteration(1, {"size_bytes": _size, "distance_km": distance.value, "link_gbps": link.value,
                          "drive": drive.value}, {"network_s": _t.network_s, "sneakernet_s": _t.sneakernet_s})
    _seen = lab.examine_tier(_label(wb.nearest_tier(_size)))
    _tiers = wb.gravity_tiers(res, distance.value, link.value, drive.value)
    _cross = (mo.md("**Where each path wins** (five tiers examined): " + "; ".join(
        f"{_label(t.dataset_bytes)}: {t.where_drives_win()}" for t in _tiers.tiers))
        if _seen >= wb.FIVE_MOVES else mo.md(f"*5-Move Rule: {_seen} of {wb.FIVE_MOVES} size tiers examined; "
                                             "where each path wins shows once you have looked at five.*"))
    _bw = _g.inputs["disk_read_bandwidth"]
    mo.vstack([
        mo.md(f"**{human(_size, 'B')} over {link.value:g} Gbit/s:** network {duration(_t.network_s)}; "
              f"{_t.drives:,} drives {duration(_t.sneakernet_s)} at {distance.value:,} km (**{_t.winner} wins**). "
              f"Drives written at {_g.inputs['disk_write_bandwidth'].value:,.0f} MB/s and read at {_bw.value:,.0f} "
              f"MB/s ({_bw.source})."),
        _cross, mo.hstack([_radar(_tiers), _crossover(_tiers)], widths="equal"),
        mo.md("**Evidence.** " + "; ".join(f"{k.replace('_', ' ')}: {human(v.value, v.unit)} ({v.source})"
                                           for k, v in _g.inputs.items())), reflect1])
    return


@app.cell
def _(lock2, lock_view, part2):
    lock_view("format_vs_ssd", lock2, "Part 2. Feeding Tax Solver", part2)
    return


@app.cell
def _(mo, res, wb):
    _fmts = wb.formats_of(res) or ["json", "protobuf"]
    fmt = mo.ui.dropdown(options=_fmts, value="json" if "json" in _fmts else _fmts[0], label="format")
    workers = mo.ui.slider(0, 32, value=1, label="DataLoader workers", show_value=True)
    disk = mo.ui.dropdown(options=wb.disk_choices(), value=wb.MEASURED_DISK, label="disk")
    measure = mo.ui.run_button(label="Measure this point on this machine")
    measure_lock = mo.ui.run_button(label="Measure the Lock here: JSON and Protobuf on an HDD, JSON on a SATA SSD")
    found = mo.ui.dropdown(options=["not yet", *map(str, range(1, 33))], value="not yet",
                           label="I found the flow equilibrium at (workers)")
    get_live, set_live = mo.state([])
    part2 = mo.vstack([fmt, workers, disk, mo.hstack([measure, found], justify="start"), measure_lock])
    return disk, fmt, found, get_live, measure, measure_lock, part2, set_live, workers


@app.cell
def _(Path, disk, fmt, get_live, lab, measure, measure_lock, mo, res, set_live, wb, workers):
    import tempfile as _tempfile

    mo.stop(not (measure.value or measure_lock.value))
    _what = (f"the Lock at {workers.value} workers" if measure_lock.value else
             f"{fmt.value} at {workers.value} workers, {disk.value}")
    with mo.status.spinner(title=f"measuring {_what} on this machine..."):
        try:
            with _tempfile.TemporaryDirectory(prefix="feedtax-lab-") as _shards:
                if measure_lock.value:
                    _answer, _rows = wb.lock2_live(res, workers.value, Path(_shards))
                    lab.add_iteration(2, {"measured_lock_at_workers": workers.value},
                                      {"format_gain_pp": _answer.format_gain_pp,
                                       "disk_gain_pp": _answer.disk_gain_pp})
                else:
                    _rows = [wb.measure_live(res, fmt.value, workers.value, disk.value, Path(_shards))]
        except ValueError as _exc:
            mo.stop(True, mo.callout(mo.md(f"Not measured: {_exc}"), kind="warn"))
    set_live([*get_live(), *_rows])
    return


@app.cell
def _(disk, fmt, found, get_live, lab, mo, reflect2, res, unlocked, wb, workers):
    mo.stop(not unlocked("format_vs_ssd"))
    mo.stop(wb.swept_track(res) is None, mo.callout(mo.md(
        "This run has no DataLoader sweep to work on: open the results of a `feedtax run`."), kind="warn"))
    from feedtax.lab.figures import au_gauge as _gauge
    from feedtax.reports.common import WIDE_LEGEND as _WIDE_LEGEND
    from feedtax.reports.common import pct_ci as _pct_ci
    from feedtax.reports.feeding_figures import mfu_vs_ingestion as _mfu_plot
    _p = wb.feeding_point(res, fmt.value, workers.value, disk.value, get_live())
    lab.add_iteration(2, {"format": fmt.value, "workers": workers.value, "disk": disk.value},
                      {"feeding_tax": _p.feeding_tax, "au": _p.au})
    lab.found_equilibrium(None if found.value == "not yet" else int(found.value))
    _n, _eq = lab.iterations(2), wb.measured_equilibrium(res, fmt.value)
    _summary = next(s for s in res.tuned_summaries() if s.track == wb.swept_track(res))
    if _n < wb.FIFTEEN_ITERATIONS:
        _verdict = (f" *15-Iteration Rule: {_n} of {wb.FIFTEEN_ITERATIONS} iterations; the measured flow "
                    "equilibrium shows after fifteen.*")
    else:
        _verdict = (f" The sweep measured the flow equilibrium of {fmt.value} at **{_eq}** workers"
                    + ("" if lab.record.equilibrium_found is None else
                       f"; you found **{lab.record.equilibrium_found}**") + ".")
    _lock2 = wb.lock2_sentences(res) + wb.lock2_live_sentences(get_live())
    mo.vstack([
        mo.md(f"**{fmt.value}, {workers.value} worker{'s' * (workers.value != 1)}, {disk.value}:** feeding tax "
              f"{_pct_ci(_p.feeding_tax, _p.feeding_tax_ci95, _p.au_ci_wide, 0)}, AU "
              f"{_pct_ci(_p.au, _p.au_ci95, _p.au_ci_wide, 0)}: *{_p.source}*"
              + (f" ({_WIDE_LEGEND})" if _p.au_ci95 else "") + f".{_verdict}"),
        mo.md("**Format or disk, both measured here:** " + " ".join(_lock2) if _lock2 else
              "*Format or disk: press \"Measure the Lock here\" to measure both at this worker count "
              "(`feedtax sweep --disk-tier hdd,sata` does it for every worker count).*"),
        mo.hstack([_gauge(_p), _mfu_plot(wb.sweep_rows(res, get_live()), _summary)], widths=[1, 2]),
        mo.md(f"**Evidence.** This run's sweep ({_summary.track}, batch {_summary.batch_size}, the consumer takes "
              f"{_summary.consumption_samples_per_s:,.0f} samples/s): flow equilibrium " + ", ".join(
                  f"{f} {'never' if n is None else n}" for f, n in _summary.flow_equilibrium.items())
              + f"; {len(get_live())} point(s) measured live in this session."), reflect2])
    return


@app.cell
def _(lock3, lock_view, part3):
    lock_view("curated_vs_noisy", lock3, "Part 3. Zero-Waste Audit", part3)
    return


@app.cell
def _(mo):
    ratio = mo.ui.slider(0, 0.9, step=0.1, value=0.5, label="filtering ratio (share of the pool dropped)",
                         show_value=True)
    quality = mo.ui.radio(options=["low", "medium", "high", "expert"], value="low", inline=True,
                          label="label quality")
    location = mo.ui.radio(options=["local", "cloud"], value="local", inline=True,
                           label="processing location (local: filter on the device, send what is kept)")
    part3 = mo.vstack([ratio, quality, location])
    return location, part3, quality, ratio


@app.cell
def _(human, lab, location, mo, quality, ratio, reflect3, res, unlocked, wb):
    mo.stop(not unlocked("curated_vs_noisy"))
    from feedtax.reports.mission_figures import energy_radar as _energy_radar
    _row, _audit = wb.zero_waste(res, ratio.value, quality.value, location.value)
    lab.add_iteration(3, {"filter_ratio": ratio.value, "label_quality": quality.value, "location": location.value},
                      {"accuracy": _row.accuracy, "energy_j": _row.energy_j, "cut": _audit.cut})
    mo.vstack([
        mo.md(f"Kept {_row.kept_samples:,} of {_row.pool_samples:,} ({quality.value} labels): accuracy "
              f"{_row.accuracy:.1%} ({'reaches' if _row.reached_target else 'misses'} the target), "
              f"{_row.samples_processed:,} samples processed, {_row.energy_j:.3g} J ({_row.energy_source}). "
              f"Transmission {_audit.transmission_j:.3g} J against {_audit.baseline_transmission_j:.3g} J for "
              f"sending the whole pool: a cut of **{_audit.cut:.0%}**, which "
              f"**{'meets' if _audit.meets_cut else 'misses'}** the {_audit.required_cut:.0%} cut in transmission "
              f"energy the lab's Sustainability Lead asks for. (Samples processed count every epoch and the "
              f"filter's probe pass over the pool, so they exceed those kept.)"),
        _energy_radar(_audit.ledger),
        mo.md("**Evidence.** " + "; ".join(f"{r.medium}: {human(r.amount.value, r.amount.unit)} x "
                                           f"{human(r.energy_per_unit.value, r.energy_per_unit.unit)} "
                                           f"({r.energy_per_unit.source}) = {human(r.joules, 'J')}"
                                           for r in _audit.ledger.tracks[0].rows)), reflect3])
    return


@app.cell
def _(lab, mo):
    prompts = {1: "Reflect: at what dataset size and distance did shipping drives beat your network, and why does "
                  "your disk's speed move that line?",
               2: "Reflect: did the format switch or the faster disk raise AU more on your machine? Quote the "
                  "measured numbers.",
               3: "Reflect: which architecture met the 50% cut, and what did it cost in accuracy?"}
    _given = {r.part: r.answer for r in lab.record.reflections}

    def _area(part):  # saved as it is typed (after a pause, or on leaving the box)
        return mo.ui.text_area(value=_given.get(part, ""), label=prompts[part], max_length=4000, full_width=True,
                               on_change=lambda answer: lab.reflect(part, prompts[part], answer))

    reflect1, reflect2, reflect3 = (_area(p) for p in prompts)
    mo.md("## Hand in\n\nYour Reflect answers, under each part, are saved as you type. "
          "`feedtax lab RESULTS.json --submit DIR` hands in the run with your lab record.")
    return reflect1, reflect2, reflect3


if __name__ == "__main__":
    app.run()
