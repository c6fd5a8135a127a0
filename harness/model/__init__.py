"""The modelling side: this machine's measurements as inputs to mlsysim's models, the four mission projections,
the model's validation against the sweep, the assumptions file, the energy ledger and the Data Gravity Audit.

The only subpackage that imports mlsysim (slow to import: always lazily, inside functions)."""
