"""reports.sections_tiers: a table per tier swept with every row, an unreachable tier named with its reason, the
Lock's answer in words (or why it could not be measured); nothing without disk tiers; the page includes it."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from feedtax import results
from feedtax.reports import html, sections_tiers
from feedtax.results.feeding import ConsumerSpec
from feedtax.results.tiers import DiskTierResult, Lock2Answer, StorageTier, TierRow, TierSweep

LAPTOP_RUN = Path(__file__).parent / "data" / "results-v4.json"
HDD = StorageTier(name="hdd", label="7.2k RPM HDD", bandwidth_bytes_per_s=150e6, latency_s=0.01,
                  source="mlsysim:Systems.Storage.Hdd7200Rpm.bandwidth", latency_source="assumption:hdd")
SATA = HDD.model_copy(update={"name": "sata", "label": "SATA SSD", "bandwidth_bytes_per_s": 550e6, "latency_s": 1e-4})
NVME = HDD.model_copy(update={"name": "nvme", "label": "NVMe", "bandwidth_bytes_per_s": 7e9})


def _row(fmt: str, tier: str, au: float, read: float | None) -> TierRow:
    return TierRow(track="edge", format=fmt, num_workers=0, batch_size=16, samples_per_s=1000.0, feeding_tax=1 - au,
                   au=au, step_s=0.005, ingestion_samples_per_s=2000.0, ingestion_mb_per_s=1.0, mb_per_s=1.0,
                   wait_s=0.25, compute_s=0.1, wall_s=0.2, step_wall_s_iqr=0.0, unstable=False, consumer="emulated",
                   device="emulated", disk_tier=tier, read_bytes=10**6, read_requests=3, read_bytes_per_s=read)


def _result() -> DiskTierResult:
    hdd = TierSweep(tier=HDD, reachable=True, rows=[_row("json", "hdd", 0.47, 51.7e6), _row("protobuf", "hdd", 0.64,
                                                                                             None)])
    sata = TierSweep(tier=SATA, reachable=True, rows=[_row("json", "sata", 0.63, 486e6), _row("protobuf", "sata",
                                                                                              0.90, 356e6)])
    nvme = TierSweep(tier=NVME, reachable=False, reason="not reachable here (this disk reads 2,298 MB/s)")
    answer = Lock2Answer.of(0, hdd.rows[0], hdd.rows[1], sata.rows[0])
    return DiskTierResult(track="edge", batch_size=16, consumer=ConsumerSpec(), disk_seq_read_mb_per_s=2298.0,
                          disk_source="measured now", tiers=[hdd, sata, nvme], lock2=[answer])


def _text(parts: list[str]) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", "".join(parts))).split())


def test_a_table_per_tier_the_unreachable_one_named_and_the_answer():
    run = results.load(LAPTOP_RUN).model_copy(update={"disk_tiers": _result()})
    parts = sections_tiers.disk_tiers(run)
    page = "".join(parts)
    assert page.count("<table>") == 2
    assert "<td class='l'>json</td><td>0</td><td>2,000</td><td>1,000</td><td>47%</td><td>—</td><td>0.250</td>" \
           "<td>51.7</td><td>3</td>" in page
    assert "95% interval" not in page  # no interval (a file from before schema 6): no legend for one
    assert "<td>—</td>" in page  # a rate not measured is shown as absent
    said = _text(parts)
    for head in ("hdd: 7.2k RPM HDD, 150 MB/s and 10 ms per request", "sata: SATA SSD, 550 MB/s and 0.1 ms per request",
                 "nvme: NVMe, 7,000 MB/s and 10 ms per request"):
        assert head in said
    assert "not reachable here (this disk reads 2,298 MB/s): not swept." in said
    assert "bandwidth mlsysim:Systems.Storage.Hdd7200Rpm.bandwidth; latency assumption:hdd" in said
    assert "This disk reads 2,298 MB/s, measured now." in said
    assert _result().lock2[0].sentence() in said


def test_each_au_shows_its_interval_and_a_wide_one_is_marked():
    result = _result()
    hdd = result.tiers[0]
    hdd.rows[0] = hdd.rows[0].model_copy(update={"au_ci95": (0.46, 0.48), "feeding_tax_ci95": (0.52, 0.54),
                                                 "steps": 64})
    hdd.rows[1] = hdd.rows[1].model_copy(update={"au_ci95": (0.60, 0.68), "feeding_tax_ci95": (0.32, 0.40),
                                                 "au_ci_wide": True, "steps": 400})
    page = "".join(sections_tiers.disk_tiers(results.load(LAPTOP_RUN).model_copy(update={"disk_tiers": result})))
    assert "<td>47% ±1.0 pp</td><td>64</td><td>0.250</td>" in page
    assert "<td>64% ±4.0 pp ~</td><td>400</td>" in page
    assert "half the width of the 95% interval" in page  # the legend says what ± and ~ mean


def test_an_answer_not_measured_says_why():
    result = _result().model_copy(update={"lock2": [Lock2Answer(reason="it needs two disk tiers swept")]})
    run = results.load(LAPTOP_RUN).model_copy(update={"disk_tiers": result})
    assert "could not be measured: it needs two disk tiers swept." in _text(sections_tiers.disk_tiers(run))


def test_nothing_without_disk_tiers_and_the_page_includes_it():
    run = results.load(LAPTOP_RUN)
    assert run.disk_tiers is None and sections_tiers.disk_tiers(run) == []
    assert "id='disk-tiers'" not in html.render(run)
    assert "id='disk-tiers'" in html.render(run.model_copy(update={"disk_tiers": _result()}))


def test_the_section_survives_a_results_file_round_trip(tmp_path):
    run = results.load(LAPTOP_RUN).model_copy(update={"disk_tiers": _result()})
    results.save(run, tmp_path / "results.json")
    again = results.load(tmp_path / "results.json")
    assert again.disk_tiers == run.disk_tiers
    assert sections_tiers.disk_tiers(again) == sections_tiers.disk_tiers(run)
