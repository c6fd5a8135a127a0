"""Older results.json documents brought up to this schema version, one step per version (as pyperf keeps its files).

``MIGRATIONS[v]`` turns a version-v document into version v+1, plain JSON dict in and out; ``migrate`` chains them
up to SCHEMA_VERSION before a document is validated, for every reader (results.load, the class collection).
What each version changed: docs/results-schema.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from feedtax.results.schema import SCHEMA_VERSION


class MigrationError(ValueError):
    """A document this feedtax cannot bring to its schema version; the message is one line saying why."""


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _transport_v2(transport: Any) -> None:
    """Written before the full-speed measurement (no worker_s_per_batch), ipc_s_per_batch held the difference of two
    waits behind the consumer (transport - in-process), not what a handover adds at full speed: it becomes null.
    Nothing is lost: both waits stay (with 0 workers the wait per step is making the batch, as at full speed)."""
    if isinstance(transport, dict) and "worker_s_per_batch" not in transport:
        transport["worker_s_per_batch"] = None
        transport["ipc_s_per_batch"] = None


def _keeping_up(rows: list, track: Any, fmt: str, consumption: Any) -> int | None:
    """The smallest measured worker count >= 1 whose loader-alone rate meets the consumer's, from the loader rows."""
    if not _is_number(consumption):
        return None
    counts = [r["num_workers"] for r in rows if isinstance(r, dict) and r.get("track") == track
              and r.get("format") == fmt and type(r.get("num_workers")) is int and r["num_workers"] >= 1
              and _is_number(r.get("ingestion_samples_per_s")) and r["ingestion_samples_per_s"] >= consumption]
    return min(counts, default=None)


def _equilibrium_v2(per_format: Any, track: Any, consumption: Any, rows: list) -> None:
    """An equilibrium of 0 workers (counted before schema 2: the main process loads in series with the consumer, so
    it always pays) is recomputed from the file's own loader rows by the rule schema 2 states: 1 worker or more."""
    if not isinstance(per_format, dict):
        return
    for fmt, workers in per_format.items():
        if type(workers) is int and workers == 0:
            per_format[fmt] = _keeping_up(rows, track, fmt, consumption)


def _v1_to_v2(doc: dict) -> dict:
    """Schema 1 -> 2: a transport's handover only ever at full speed; no flow equilibrium at 0 workers."""
    feeding = doc.get("feeding")
    if not isinstance(feeding, dict):
        return doc
    rows = doc["loader"] if isinstance(doc.get("loader"), list) else []
    summaries = feeding.get("summaries")
    summaries = [s for s in summaries if isinstance(s, dict)] if isinstance(summaries, list) else []
    consumption = {}
    for s in summaries:
        _transport_v2(s.get("transport"))
        _equilibrium_v2(s.get("flow_equilibrium"), s.get("track"), s.get("consumption_samples_per_s"), rows)
        consumption.setdefault(s.get("track"), s.get("consumption_samples_per_s"))
    if isinstance(feeding.get("flow_equilibrium"), dict):
        for track, per_format in feeding["flow_equilibrium"].items():
            _equilibrium_v2(per_format, track, consumption.get(track), rows)
    return doc


def _v2_to_v3(doc: dict) -> dict:
    """Schema 2 -> 3: the sweep measured feedtax's loader only, so every loader row and summary is the tuned one."""
    for row in doc["loader"] if isinstance(doc.get("loader"), list) else []:
        if isinstance(row, dict):
            row.setdefault("loader", "tuned")
    feeding = doc.get("feeding")
    summaries = feeding.get("summaries") if isinstance(feeding, dict) else None
    for summary in summaries if isinstance(summaries, list) else []:
        if isinstance(summary, dict):
            summary.setdefault("loader", "tuned")
    return doc


def _v3_to_v4(doc: dict) -> dict:
    """Schema 3 -> 4: fits carry no intervals before 4, so nothing says an extrapolation is informative: every
    extrapolated prediction is marked not informative (those within the measured counts stand on measurements)."""
    for section in (doc.get("feeding"), doc.get("pipeline")):
        summaries = section.get("summaries") if isinstance(section, dict) else None
        for summary in summaries if isinstance(summaries, list) else []:
            fits = summary.get("fits") if isinstance(summary, dict) else None
            for fit in fits if isinstance(fits, list) else []:
                points = fit.get("predicted") if isinstance(fit, dict) else None
                for p in points if isinstance(points, list) else []:
                    if isinstance(p, dict) and p.get("extrapolated") is True:
                        p.setdefault("informative", False)
    return doc


FIRST_READ_BEFORE_V5 = "not measured apart before schema 5: the median of the cold reads, re-reads of one file included"


def _v4_to_v5(doc: dict) -> dict:
    """Schema 4 -> 5: the disk probe reads each write back once, apart from its re-reads, and the model uses that first
    read. A version 4 file has only its cold median (re-reads included): that is its first read, and says so."""
    disk = doc.get("disk")
    if isinstance(disk, dict) and "seq_read_mb_per_s_first" not in disk:
        disk["seq_read_mb_per_s_first"] = disk.get("seq_read_mb_per_s_cold")
        disk["first_read_method"] = FIRST_READ_BEFORE_V5
        disk["repeat_read_speedup"] = None
        disk["repeats_cached_below_os"] = None
    return doc


AU_FIELDS_V6 = ("au_ci95", "feeding_tax_ci95", "au_ci_wide", "au_ci_target_pp", "steps", "stopped_by", "mlperf_au_ci95")


def _rows_v6(rows: Any, fields: tuple[str, ...] = AU_FIELDS_V6) -> None:
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            for name in fields:
                row.setdefault(name, None)


def _v5_to_v6(doc: dict) -> dict:
    """Schema 5 -> 6: every AU and feeding tax carries its 95% interval, and a sweep point runs until that interval is
    narrow (or a cap). Before 6 no interval was measured and the steps were a fixed count not recorded per row: every
    interval, the wide mark, the target, the steps and what stopped the run become null (not measured), never guessed.
    """
    _rows_v6(doc.get("loader"))
    feeding = doc.get("feeding")
    gaps = feeding.get("loader_gaps") if isinstance(feeding, dict) else None
    for gap in gaps if isinstance(gaps, list) else []:
        if isinstance(gap, dict):
            gap.setdefault("default_au_ci95", None)
            gap.setdefault("tuned_au_ci95", None)
            _rows_v6(gap.get("fixes"), ("au_ci95", "mlperf_au_ci95"))
    pipeline = doc.get("pipeline")
    if isinstance(pipeline, dict):
        _rows_v6(pipeline.get("rows"))
        points = pipeline.get("ranks")
        for point in points if isinstance(points, list) else []:
            _rows_v6(point.get("ranks") if isinstance(point, dict) else None, ("au_ci95", "feeding_tax_ci95"))
    tiers = doc.get("disk_tiers")
    if isinstance(tiers, dict):
        for sweep in tiers.get("tiers") if isinstance(tiers.get("tiers"), list) else []:
            _rows_v6(sweep.get("rows") if isinstance(sweep, dict) else None)
        _rows_v6(tiers.get("lock2"), ("json_au_ci95", "protobuf_au_ci95", "upgraded_au_ci95"))
    _rows_v6(doc.get("model_validation"), ("measured_feeding_tax_ci95", "rates_at"))
    return doc


def _v6_to_v7(doc: dict) -> dict:
    """Schema 6 -> 7: a sweep may read a dataset larger than memory (--dataset-size). Before 7 every sweep read
    profile-sized shards: no dataset size, no datasets."""
    if isinstance(doc.get("config"), dict):
        doc["config"].setdefault("dataset_bytes", None)
    if isinstance(doc.get("feeding"), dict):
        doc["feeding"].setdefault("datasets", [])
    return doc


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5,
                                                 5: _v5_to_v6, 6: _v6_to_v7}


def migrate(doc: dict) -> tuple[dict, int]:
    """(The document at SCHEMA_VERSION, the version it was written with); MigrationError for a version that is
    missing, not an integer, newer than this feedtax knows or older than any migration. The input is not changed."""
    if "schema_version" not in doc:
        raise MigrationError("no schema_version: not a feedtax results file")
    version = doc["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise MigrationError(f"schema_version is {json.dumps(version)[:40]}, expected an integer")
    if version > SCHEMA_VERSION:
        raise MigrationError(f"schema_version {version} is newer than this feedtax reads ({SCHEMA_VERSION}): "
                             "update feedtax to read it")
    if version < SCHEMA_VERSION and any(v not in MIGRATIONS for v in range(version, SCHEMA_VERSION)):
        known = ", ".join(map(str, sorted(MIGRATIONS))) or "none"
        raise MigrationError(f"schema_version {version} is older than any this feedtax migrates (from: {known})")
    if version < SCHEMA_VERSION:
        doc = copy.deepcopy(doc)
    for v in range(version, SCHEMA_VERSION):
        doc = MIGRATIONS[v](doc)
        doc["schema_version"] = v + 1
    return doc, version


__all__ = ["MIGRATIONS", "MigrationError", "migrate"]
