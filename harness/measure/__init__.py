"""Measuring a run: profiles, the runner's stages, format costs, consumers, the DataLoader sweep."""
