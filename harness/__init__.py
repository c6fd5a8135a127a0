"""feedtax: what it costs to feed an accelerator, measured on this machine.

Subpackages by concern, data flowing one way: ``measure`` (profiles, probes run, format costs, the
DataLoader sweep) -> ``model`` (mlsysim projections, the only code that imports mlsysim) ->
``results`` (the versioned results.json) -> ``reports``. ``loader``, ``formats`` and ``probes`` are the
measuring tools, ``classroom`` collects a class's runs, ``cli`` is every command.
"""

__version__ = "0.1.0"
