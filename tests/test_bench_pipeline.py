"""bench.pipeline: a user's factory found by its import path (from the current directory, as python -m), told apart
by signature, its DataLoaders checked against what was asked, and the sweep saving after every point.

(tests/test_pipeline.py holds feedtax.model.pipeline's tests; the command line's are in tests/test_sweep_cli.py.)"""

from __future__ import annotations

import sys

import pipeline_fixture as fixture
import pytest

from feedtax.bench import pipeline as pl
from feedtax.bench.consumers import EmulatedConsumer
from feedtax.results.pipeline import PipelineConsumer


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A folder with the user's own module in it, as the current directory; its modules forgotten after."""
    (tmp_path / "my_data.py").write_text(
        "import torch\n\n"
        "def make():\n    return [torch.zeros(2)] * 8\n\n"
        "def make_loader(num_workers, batch_size, pin_memory=False):\n"
        "    return torch.utils.data.DataLoader(make(), batch_size=batch_size, num_workers=num_workers)\n\n"
        "def per_item(item):\n    return item\n")
    (tmp_path / "needs_dep.py").write_text("import a_dependency_not_installed\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('configure me first')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    for name in ("my_data", "needs_dep", "raises"):
        sys.modules.pop(name, None)


def test_a_module_in_the_current_directory_imports(user_module):
    assert callable(pl.resolve("my_data:make", "--dataset"))
    pipe = pl.Pipeline("my_data:make")
    assert (pipe.kind, pipe.name, pipe.length) == ("dataset", "make", 8)


@pytest.mark.parametrize("path, message", [
    ("needs_dep:make", "importing needs_dep failed: No module named 'a_dependency_not_installed'"),
    ("raises:make", "importing raises raised RuntimeError: configure me first"),
    ("my_data:", "expected package.module:function"),
    ("my data:make", "expected package.module:function"),
])
def test_a_path_that_does_not_import_is_named(user_module, path, message):
    with pytest.raises(pl.PipelineError, match=message):
        pl.resolve(path, "--dataset")


def test_factories_are_told_apart_by_signature(user_module):
    assert pl.factory_kind(pl.resolve("my_data:make", "p"), "p") == "dataset"
    # more parameters than num_workers and batch_size are fine where they have defaults
    assert pl.factory_kind(pl.resolve("my_data:make_loader", "p"), "p") == "loader"
    assert pl.factory_kind(fixture.SleepyDataset, "p") == "dataset"  # a Dataset class, made with its defaults
    with pytest.raises(pl.PipelineError, match=r"takes \(item\): a dataset factory takes no argument"):
        pl.factory_kind(pl.resolve("my_data:per_item", "p"), "my_data:per_item")


def test_a_loader_factory_is_called_per_point_and_checked(user_module):
    pipe = pl.Pipeline("my_data:make_loader")
    loader = pipe.loader(4, 0)
    assert (loader.batch_size, loader.num_workers) == (4, 0)
    dataset, settings = pipe.source(2, 1)
    assert len(dataset) == 8 and pipe.length == 8
    assert set(settings) <= {"collate_fn", "pin_memory", "drop_last", "timeout", "worker_init_fn",
                             "multiprocessing_context", "prefetch_factor"} and "collate_fn" in settings


def test_the_sweep_reports_every_point_as_it_lands(monkeypatch):
    monkeypatch.chdir(fixture.__file__.rsplit("/", 1)[0])
    seen = []
    pipe = pl.Pipeline("pipeline_fixture:fast_dataset")
    feed = pl.Feed(EmulatedConsumer(0.001), PipelineConsumer(kind="emulated", step_s=0.001, device="emulated"), 3)
    section = pl.sweep_pipeline(pipe, feed, [0, 1], [2, 4],
                                on_point=lambda s, label: seen.append((label, len(s.rows), len(s.summaries))))
    assert seen == [("batch 2: breakdown", 0, 0), ("batch 2, 0 workers", 1, 0), ("batch 2, 1 workers", 2, 0),
                    ("batch 2: transport", 2, 1), ("batch 4: breakdown", 2, 1), ("batch 4, 0 workers", 3, 1),
                    ("batch 4, 1 workers", 4, 1), ("batch 4: transport", 4, 2)]
    assert section.dataset_len == 2_000 and [s.batch_size for s in section.summaries] == [2, 4]
    # the dataset is large enough for the second breakdown to read samples neither the rows nor the first read
    assert [s.getitem.first_read for s in section.summaries] == [True, True]


def test_rows_reach_is_the_samples_read_in_order():
    pipe = pl.Pipeline.__new__(pl.Pipeline)
    pipe.kind, pipe.length = "dataset", 1_000
    warm, prefetch = 2 + 2 * 2, 2 * 2
    assert pl.rows_reach(pipe, 4, 2, 10) == (warm + 10 + prefetch + 2) * 4
    pipe.kind = "loader"  # a loader factory's order is its own (it may shuffle): all of it may have been read
    assert pl.rows_reach(pipe, 4, 2, 10) == 1_000
