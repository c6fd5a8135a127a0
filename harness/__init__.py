"""feedtax: what it costs to feed an accelerator, measured on this machine.

``feedtax.measure(loader, consumer)`` measures the feeding tax of any pipeline (feedtax.api); the command line
is ``feedtax`` (feedtax.cli). Subpackages by concern, data flowing one way: ``bench`` (profiles, the run's
stages, format costs, the DataLoader sweep) -> ``model`` (mlsysim projections, the only code that imports mlsysim)
-> ``results`` (the versioned results.json) -> ``reports``. ``loader``, ``formats`` and ``probes`` are the
measuring tools, ``classroom`` collects a class's runs.
"""

try:  # the version pip installed, which names the commit it was built from (setuptools-scm)
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("feedtax")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "unknown"
_API = ("measure", "FeedingError", "FeedingResult", "TimedStep", "as_consumer")


def __getattr__(name: str):
    """The API's names, imported on first use: `import feedtax` stays cheap (no torch) for the command line."""
    if name in _API:
        from feedtax import api

        return getattr(api, name)
    raise AttributeError(f"module 'feedtax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
