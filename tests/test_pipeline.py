"""pipeline: evaluate_pipeline's inputs from one format's measured costs, and its result on them."""

from __future__ import annotations

import pytest

from feedtax.model import pipeline
from feedtax.model.inputs import FormatMeasure
from feedtax.model.sources import measured


def test_text_format_larger_than_raw_is_passed_at_its_on_disk_size():
    fm = FormatMeasure(track="cloud", format="json", bytes_per_sample=200, raw_bytes_per_sample=100,
                       decode_samples_per_s=10)
    one = measured(1)
    inputs = pipeline.pipeline_inputs(fm, None, read_bandwidth=measured(1, "MB/s"), scale=[one],
                                      transform_per_core=measured(1e9), required=measured(1))
    assert inputs["sample_size"].value == 200 and inputs["compression_ratio"].value == 1
    p = pipeline.run_pipeline(inputs)
    assert p.read_rate_per_second == pytest.approx(1e6 / 200)  # 1 MB/s over 200 bytes read per sample
    assert p.decode_rate_per_second == pytest.approx(10)
