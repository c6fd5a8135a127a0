"""A student's lab session: the Locks committed, the iterations made and the Reflect answers, kept in a LabRecord
and saved to lab.json beside the run's results after every change (a closed browser loses nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from feedtax.results import lab as labfile
from feedtax.results import now_utc
from feedtax.results.lab import Iteration, LabRecord, Lock, Reflection
from feedtax.results.schema import Results


@dataclass
class LabSession:
    """The record and where it is saved; every change is written at once."""

    record: LabRecord
    path: Path

    @classmethod
    def open(cls, res: Results, results_path: Path) -> LabSession:
        """The run's lab.json if it exists (a session carries on where it stopped), else a new record for the run."""
        path = labfile.lab_path(Path(results_path))
        if path.exists():
            record = labfile.load_lab(path)
            if record.run_id != res.run_id:
                raise labfile.LabFileError(f"{path}: belongs to run {record.run_id}, not to {res.run_id}")
            return cls(record, path)
        return cls(LabRecord(run_id=res.run_id), path)

    def lock(self, lock_id: str) -> Lock | None:
        return self.record.lock(lock_id)

    def commit_lock(self, lock_id: str, choice: str, confidence: str) -> bool:
        """The prediction, committed once: False (nothing changes) for a Lock already committed."""
        if self.lock(lock_id) is not None:
            return False
        self._save(locks=[*self.record.locks, Lock(lock=lock_id, choice=choice, confidence=confidence,
                                                   committed_utc=now_utc())])
        return True

    def add_iteration(self, part: int, settings: dict, outputs: dict) -> None:
        """One workbench move, unless it repeats the part's last one (a re-render is not an iteration)."""
        last = next((it for it in reversed(self.record.iterations) if it.part == part), None)
        if last is None or last.settings != settings:
            it = Iteration(part=part, at_utc=now_utc(), settings=settings, outputs=outputs)
            self._save(iterations=[*self.record.iterations, it])

    def iterations(self, part: int) -> int:
        return sum(it.part == part for it in self.record.iterations)

    def examine_tier(self, tier: str) -> int:
        """Part 1's 5-Move Rule: the dataset-size tier looked at; how many distinct tiers so far."""
        if tier not in self.record.tiers_examined:
            self._save(tiers_examined=[*self.record.tiers_examined, tier])
        return len(self.record.tiers_examined)

    def found_equilibrium(self, workers: int | None) -> None:
        if self.record.equilibrium_found != workers:
            self._save(equilibrium_found=workers)

    def reflect(self, part: int, prompt: str, answer: str) -> None:
        """A Reflect answer, replacing the part's earlier one; an empty answer keeps the earlier one."""
        if answer.strip():
            kept = [r for r in self.record.reflections if r.part != part]
            self._save(reflections=[*kept, Reflection(part=part, prompt=prompt, answer=answer)])

    def _save(self, **changes) -> None:
        """Validated first (the record's limits hold), then written atomically; the session keeps the saved record."""
        record = LabRecord.model_validate({**self.record.model_dump(), **changes})
        labfile.save_lab(record, self.path)
        self.record = record
