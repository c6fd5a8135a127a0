"""The lab record (lab.json): a round trip keeps every field; every hostile or broken file is refused with one line
naming the file; a record that would not load again is never saved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from feedtax.results import lab as L
from feedtax.results.lab import (
    LOCKS,
    Iteration,
    LabFileError,
    LabRecord,
    Lock,
    Reflection,
    lab_json_schema,
    lab_path,
    load_lab,
    save_lab,
)

T0 = "2026-03-01T10:00:00+00:00"


def record(run_id: str = "20260301T100000Z-0a1b2c3d", **changes) -> LabRecord:
    """A lab record with every part filled in, as the notebook writes it."""
    fields = dict(
        run_id=run_id,
        locks=[Lock(lock="gravity", choice="fiber", confidence="high", committed_utc=T0),
               Lock(lock="format_vs_ssd", choice="ssd", confidence="low", committed_utc="2026-03-01T10:05:00Z"),
               Lock(lock="curated_vs_noisy", choice="curated", confidence="medium", committed_utc=T0)],
        reflections=[Reflection(part=1, prompt="What surprised you?", answer="The truck won <b>by days</b> & more."),
                     Reflection(part=3, prompt="Why?", answer="<script>alert('x')</script>")],
        iterations=[Iteration(part=1, at_utc=T0, settings={"size": "1 PB", "link_gbps": 10.0, "drives": 50,
                                                           "measured_disk": True},
                              outputs={"network_s": 846_720.0, "sneakernet_s": 420_000.5, "crossover_km": None}),
                    Iteration(part=2, at_utc=T0, settings={"format": "json", "workers": 2}, outputs={"au": 0.13})],
        tiers_examined=["10 GB", "1 TB", "100 TB", "1 PB", "10 PB"],
        equilibrium_found=4,
    )
    fields.update(changes)
    return LabRecord(**fields)


def test_the_three_locks_are_the_labs():
    assert {k: v[1] for k, v in LOCKS.items()} == {
        "gravity": ("fiber", "drive"), "format_vs_ssd": ("format", "ssd"), "curated_vs_noisy": ("noisy", "curated")}
    assert all(q.endswith("?") for q, _ in LOCKS.values())
    assert L.LAB_SCHEMA_VERSION == 1 and record().lab_schema_version == 1


def test_round_trip_keeps_everything_and_leaves_no_temp_file(tmp_path):
    rec = record()
    path = lab_path(tmp_path / "run" / "results.json")
    assert path == tmp_path / "run" / "lab.json"
    path.parent.mkdir()
    save_lab(rec, path)
    assert load_lab(path) == rec
    assert load_lab(path).reflections[1].answer == "<script>alert('x')</script>"  # stored as typed
    assert load_lab(path).iterations[0].settings == {"size": "1 PB", "link_gbps": 10.0, "drives": 50,
                                                      "measured_disk": True}
    assert os.listdir(path.parent) == ["lab.json"]
    empty = LabRecord(run_id="r")
    save_lab(empty, path)
    assert load_lab(path) == empty and load_lab(path).lock("gravity") is None
    assert record().lock("format_vs_ssd").choice == "ssd"


def test_schema_lists_the_fields_the_notebook_writes():
    props = lab_json_schema()["properties"]
    assert {"lab_schema_version", "run_id", "locks", "reflections", "iterations", "tiers_examined",
            "equilibrium_found"} <= set(props)


def _doc(**changes) -> dict:
    doc = json.loads(record().model_dump_json())
    doc.update(changes)
    return doc


def _lock(**changes) -> dict:
    return {"lock": "gravity", "choice": "drive", "confidence": "low", "committed_utc": T0, **changes}


HOSTILE = {
    "wrong_type_choice": (_doc(locks=[_lock(choice=1)]), "locks.0.choice"),
    "number_as_text": (_doc(equilibrium_found="4"), "equilibrium_found"),
    "true_as_part": (_doc(reflections=[{"part": True, "prompt": "p", "answer": "a"}]), "reflections.0.part"),
    "part_4": (_doc(reflections=[{"part": 4, "prompt": "p", "answer": "a"}]), "reflections.0.part"),
    "unknown_lock": (_doc(locks=[_lock(lock="moon")]), "unknown lock 'moon'"),
    "unknown_choice": (_doc(locks=[_lock(choice="pigeon")]), "unknown choice 'pigeon'"),
    "duplicate_lock": (_doc(locks=[_lock(), _lock(choice="fiber")]), "a second Lock for gravity"),
    "not_utc": (_doc(locks=[_lock(committed_utc="2026-03-01T10:00:00+02:00")]), "not in UTC"),
    "not_a_time": (_doc(locks=[_lock(committed_utc="yesterday")]), "not an ISO 8601 time"),
    "unknown_field": (_doc(grade="A+"), "grade"),
    "version_2": (_doc(lab_schema_version=2), "lab_schema_version"),
    "answer_too_long": (_doc(reflections=[{"part": 1, "prompt": "p", "answer": "x" * 4001}]), "answer"),
    "too_many_keys": (_doc(iterations=[{"part": 1, "at_utc": T0, "settings": {f"k{i}": i for i in range(33)},
                                        "outputs": {}}]), "settings"),
    "negative_workers": (_doc(equilibrium_found=-1), "equilibrium_found"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_records_are_refused_naming_the_file_and_the_field(name, tmp_path):
    doc, said = HOSTILE[name]
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(LabFileError) as err:
        load_lab(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg and said in msg, msg


@pytest.mark.parametrize("text, said", [
    ('{"run_id": "r", "iterations": [{"part": 1, "at_utc": "T0", "settings": {}, "outputs": {"au": NaN}}]}',
     "iterations[0].outputs.au is nan"),
    ('{"run_id": "r", "iterations": [{"part": 1, "at_utc": "T0", "settings": {"x": Infinity}, "outputs": {}}]}',
     "is inf"),
    ('{"run_id": "r", "equilibrium_found": 1e999}', "is inf"),
    ("", "not JSON"), ("{'run_id': 'r'}", "not JSON"), ("[1, 2]", "not a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "not JSON"), ('{"run_id": "r", "locks": [', "not JSON"),
])
def test_broken_json_and_non_finite_numbers_are_refused(text, said, tmp_path):
    path = tmp_path / "lab.json"
    path.write_text(text.replace('"T0"', f'"{T0}"'))
    with pytest.raises(LabFileError, match="^" + str(path).replace("\\", "\\\\") + ": ") as err:
        load_lab(path)
    assert said in str(err.value)


def test_too_big_missing_and_not_a_file_are_refused_before_reading(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(_doc(reflections=[{"part": 1, "prompt": "p", "answer": "x" * (10 << 20)}])))
    with pytest.raises(LabFileError, match="over the 1,048,576-byte limit"):
        load_lab(big)
    sparse = tmp_path / "sparse.json"
    with open(sparse, "wb") as f:
        f.truncate(L.MAX_LAB_BYTES + 1)
    with pytest.raises(LabFileError, match="over the"):
        load_lab(sparse)
    with pytest.raises(LabFileError, match="cannot read"):
        load_lab(tmp_path / "nowhere.json")
    with pytest.raises(LabFileError, match="not a regular file"):
        load_lab(tmp_path)


def test_a_record_that_would_not_load_again_is_not_saved(tmp_path):
    path = tmp_path / "lab.json"
    save_lab(record(), path)
    before = path.read_bytes()
    huge = record(iterations=[Iteration(part=1, at_utc=T0, settings={f"k{i}": "v" * 200 for i in range(32)},
                                        outputs={}) for _ in range(400)])
    with pytest.raises(LabFileError, match="over the 1,048,576-byte limit"):
        save_lab(huge, path)
    changed = record(locks=[Lock(lock="gravity", choice="fiber", confidence="high", committed_utc=T0)])
    changed.locks.append(Lock(lock="gravity", choice="drive", confidence="low", committed_utc=T0))  # after the fact
    with pytest.raises(LabFileError, match="a second Lock for gravity"):
        save_lab(changed, path)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["lab.json"]


def test_save_names_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LabFileError, match="cannot write"):
        save_lab(record(), Path(blocker) / "lab.json")
