"""classroom.locks: each Lock's measured answer is what the run's own report says, one of the Lock's choices or none
with the reason; disk tiers measured in the run take the place of the decode-rate answer."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from feedtax import results
from feedtax.classroom.locks import measured_answers
from feedtax.reports import answers as report
from feedtax.results.lab import LOCKS
from feedtax.results.tiers import Lock2Answer

DATA = sorted((Path(__file__).parent / "data").glob("*.json"))


def _report(res, evidence: str) -> list[str]:
    return next(a.lines for a in report.answers(res) if a.evidence == evidence)


@pytest.mark.parametrize("path", DATA, ids=lambda p: p.name)
def test_stored_runs_agree_with_their_report(path):
    res = results.load(path)
    got = measured_answers(res)
    assert list(got) == list(LOCKS)
    for k, a in got.items():
        assert a.lock == k and a.answer in LOCKS[k][1], (k, a.reason)
        assert a.evidence and "\n" not in a.evidence

    # Part 1: the report's sentence for the lab's petabyte over the slowest link names the same winner
    slowest = min(t.link_gbps for t in res.gravity.tiers)
    line = next(x for x in _report(res, "gravity") if x.startswith(f"1 PB over {slowest:g} Gbit/s"))
    winner = re.search(r"\((\w+) wins\)", line).group(1)
    assert got["gravity"].answer == {"network": "fiber", "sneakernet": "drive"}[winner]

    # Part 2: the report's sentence for the swept track says whether to switch formats or buy a faster SSD
    swept = res.tuned_rows()[0].track
    line = next(x for x in _report(res, "formats") if x.startswith(f"{swept}: Protobuf decodes"))
    assert got["format_vs_ssd"].answer == ("format" if "switch formats" in line else "ssd")
    assert got["format_vs_ssd"].evidence.startswith(f"{swept}: ")

    # Part 3: the report's energy ratio of the cheapest noisy pool to the curated run
    line = next(x for x in _report(res, "selection") if x.startswith("The cheapest noisy pool"))
    times = float(re.search(r"([\d.]+)x the curated run's energy", line).group(1))
    assert got["curated_vs_noisy"].answer == ("curated" if times >= 1 else "noisy")


@pytest.fixture()
def run():
    return results.load(DATA[0])


def test_a_slow_disk_makes_the_ssd_the_answer_as_the_report_says(run):
    run.disk.seq_read_mb_per_s_first = 0.001
    swept = run.tuned_rows()[0].track
    line = next(x for x in _report(run, "formats") if x.startswith(f"{swept}:"))
    assert "a faster SSD helps" in line
    a = measured_answers(run)["format_vs_ssd"]
    assert a.answer == "ssd" and "the disk binds" in a.evidence


def test_without_a_disk_or_a_json_protobuf_pair_there_is_no_answer_and_a_reason(run):
    no_disk = run.model_copy(update={"disk": None})
    a = measured_answers(no_disk)["format_vs_ssd"]
    assert a.answer is None and "no disk read measurement" in a.reason
    no_pb = run.model_copy(update={"formats": [f for f in run.formats if f.format != "protobuf"]})
    a = measured_answers(no_pb)["format_vs_ssd"]
    assert a.answer is None and "JSON and Protobuf" in a.reason


def test_tracks_are_asked_when_none_was_swept(run):
    unswept = run.model_copy(update={"loader": []})
    a = measured_answers(unswept)["format_vs_ssd"]
    assert a.answer == "format" and a.evidence.count("decode binds") == len({f.track for f in run.formats})


def test_gravity_follows_the_slowest_link_at_the_audits_distance(run):
    tiers = [t for t in run.gravity.tiers if t.dataset_bytes == 10**15]
    for t in tiers:
        t.winner = "network" if t.link_gbps == min(x.link_gbps for x in tiers) else "sneakernet"
        t.crossover_km = None
    a = measured_answers(run)["gravity"]
    assert a.answer == "fiber" and "the network wins at any distance" in a.evidence
    assert f"at {tiers[0].distance_km:,.0f} km" in a.evidence


def test_gravity_without_measured_disk_rates_has_no_answer(run):
    assert measured_answers(run.model_copy(update={"gravity": None}))["gravity"].answer is None
    run.gravity.inputs["disk_write_bandwidth"].source = "mlsysim:Systems.Storage.Hdd7200Rpm"
    a = measured_answers(run)["gravity"]
    assert a.answer is None and "not measured on this machine" in a.reason and "mlsysim" in a.reason


def _selection(run, *, curated_reaches=True, curated_j=None, noisy_j=None):
    sel = run.selection
    c = next(r for r in sel.rows if r.scenario.startswith("few"))
    c.reached_target = curated_reaches
    if curated_j is not None:
        c.energy_j = curated_j
    if noisy_j is not None:
        for r in sel.rows:
            if r.scenario.startswith("many") and r.reached_target:
                r.energy_j = noisy_j
    return measured_answers(run)["curated_vs_noisy"]


def test_curated_or_noisy_by_the_energy_to_reach_the_target(run):
    assert _selection(run, curated_j=1.0, noisy_j=0.5).answer == "noisy"
    assert _selection(run, curated_j=0.5, noisy_j=1.0).answer == "curated"
    assert _selection(run, curated_reaches=False, curated_j=0.01, noisy_j=1.0).answer == "noisy"
    for r in run.selection.rows:
        r.reached_target = False
    a = measured_answers(run)["curated_vs_noisy"]
    assert a.answer is None and "neither reaches the target" in a.reason
    assert measured_answers(run.model_copy(update={"selection": None}))["curated_vs_noisy"].answer is None


def _lock2(workers: int, fmt_pp: float, disk_pp: float) -> Lock2Answer:
    au = 0.3
    return Lock2Answer(num_workers=workers, slow_tier="hdd", fast_tier="nvme", json_au=au,
                       protobuf_au=au + fmt_pp / 100, upgraded_au=au + disk_pp / 100, format_gain_pp=fmt_pp,
                       disk_gain_pp=disk_pp, winner="format" if fmt_pp > disk_pp else "disk",
                       beats_noise=abs(fmt_pp - disk_pp) > 2)


def test_disk_tiers_measured_in_the_run_take_precedence(run):
    assert measured_answers(run)["format_vs_ssd"].answer == "format"  # decode binds on this machine
    with_tiers = run.model_copy(update={"disk_tiers": SimpleNamespace(lock2=[_lock2(0, 1.0, 30.0),
                                                                             _lock2(2, 0.5, 25.0)])})
    a = measured_answers(with_tiers)["format_vs_ssd"]
    assert a.answer == "ssd" and "measured at throttled disk tiers" in a.evidence and "+30.0 pp" in a.evidence

    noise = run.model_copy(update={"disk_tiers": SimpleNamespace(lock2=[_lock2(1, 10.0, 9.0)])})
    a = measured_answers(noise)["format_vs_ssd"]
    assert a.answer is None and "noise" in a.reason

    split = run.model_copy(update={"disk_tiers": SimpleNamespace(lock2=[_lock2(0, 30.0, 1.0), _lock2(4, 1.0, 30.0)])})
    assert "depends on the worker count" in measured_answers(split)["format_vs_ssd"].reason

    not_measured = SimpleNamespace(lock2=[Lock2Answer(reason="nvme is not reachable here")])
    unmeasured = run.model_copy(update={"disk_tiers": not_measured})
    assert measured_answers(unmeasured)["format_vs_ssd"] == measured_answers(run)["format_vs_ssd"]  # falls back
