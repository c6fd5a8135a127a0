"""A class's runs: submitting one, collecting many into DuckDB, comparing two."""
