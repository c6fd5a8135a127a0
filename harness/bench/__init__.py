"""Measuring a run: profiles, the runner's stages, format costs, consumers, the DataLoader sweep, its scaling fit,
wait breakdown and the harness's own overhead."""
