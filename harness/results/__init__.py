"""results.json: its versioned schema (the models, by section) and its crash-safe reading and writing."""

from feedtax.results.io import ResultsFileError, json_schema, load, new_run_id, now_utc, save, write_atomic
from feedtax.results.schema import (
                                    SCHEMA_VERSION,
                                    CacheState,
                                    Feeding,
                                    FormatResult,
                                    Results,
                                    RunConfig,
                                    Stage,
                                    TransformResult,
)

__all__ = ["SCHEMA_VERSION", "CacheState", "Feeding", "FormatResult", "Results", "ResultsFileError", "RunConfig",
           "Stage", "TransformResult", "json_schema", "load", "new_run_id", "now_utc", "save", "write_atomic"]
