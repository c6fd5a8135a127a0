"""The modelling side: assumptions, mission projections through mlsysim, validation, energy ledger, gravity.

The only subpackage that imports mlsysim (slow to import: always lazily, inside functions)."""
