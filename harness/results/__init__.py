"""results.json: its versioned schema (the models, by section), its migrations, its crash-safe reading and writing."""

from feedtax.results.io import ResultsFileError, json_schema, load, new_run_id, now_utc, save, write_atomic
from feedtax.results.migrations import MigrationError, migrate
from feedtax.results.schema import (
    SCHEMA_VERSION,
    CacheState,
    Feeding,
    FormatResult,
    Merged,
    Results,
    RunConfig,
    Stage,
    TransformResult,
)

__all__ = ["SCHEMA_VERSION", "CacheState", "Feeding", "FormatResult", "Merged", "MigrationError", "Results",
           "ResultsFileError", "RunConfig", "Stage", "TransformResult", "json_schema", "load", "migrate", "new_run_id",
           "now_utc", "save", "write_atomic"]
