"""The codebase's shape: one import package, layers that import one way, modules and functions of readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# repository folder -> import package it installs as
FOLDERS = {"harness": "feedtax", "formats": "feedtax.formats", "probes": "feedtax.probes", "reports": "feedtax.reports"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
GENERATED = {"feedtax.formats.sample_pb2", "feedtax._version"}

# what each part of feedtax may import (besides itself and third-party packages); the layers, top to bottom:
# cli -> bench/classroom -> model/loader/formats/probes -> results/vocabulary; reports read results only
ALLOWED: dict[str, set[str]] = {
    "vocabulary": set(),
    "units": set(),
    "atomic": set(),
    "stats": {"vocabulary"},
    "results": {"vocabulary", "stats", "atomic"},
    "formats": {"vocabulary", "atomic"},
    "datasets": {"formats", "vocabulary", "atomic"},
    "probes": {"results", "stats", "vocabulary", "units", "atomic"},
    "loader": {"formats", "datasets", "vocabulary", "stats", "atomic"},
    "model": {"results", "vocabulary", "stats", "formats", "datasets", "units", "atomic"},
    "bench": {"model", "loader", "formats", "datasets", "probes", "results", "stats", "vocabulary", "units",
                "atomic"},
    "classroom": {"results", "vocabulary", "stats", "units", "atomic"},
    # the class report reads the classroom's store
    "reports": {"results", "vocabulary", "stats", "classroom", "atomic"},
    "cli": {"bench", "classroom", "model", "loader", "formats", "datasets", "probes", "results", "reports",
            "lab", "stats", "vocabulary", "units", "atomic"},
    "api": {"bench", "formats", "probes", "results", "stats", "vocabulary"},
    # the lab lays out what the other layers measure, model and draw
    "lab": {"bench", "classroom", "model", "loader", "formats", "datasets", "probes", "results", "reports",
            "stats", "vocabulary", "units", "atomic"},
    "__main__": {"cli"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, package in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            if name not in GENERATED:
                out[name] = path
    return out


MODULES = _modules()


def _part(module: str) -> str:
    """The layer a feedtax module belongs to: its first name under feedtax."""
    rest = module.split(".")[1:]
    return rest[0] if rest else "__init__"


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level] if not path.name == "__init__.py" else module.split(".")
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names if f"{target}.{a.name}" in MODULES]
    return out


def test_only_the_feedtax_package_is_imported():
    stray = [f"{MODULES[m].relative_to(ROOT)}:{line}: {name}" for m in MODULES for line, name in _imports(MODULES[m], m)
             if name.split(".")[0] in {"harness", "formats", "probes", "reports"}]
    assert not stray, "imports outside the feedtax namespace:\n" + "\n".join(stray)


def test_layers_import_one_way():
    wrong = []
    for module, path in MODULES.items():
        part = _part(module)
        if part == "__init__":
            continue
        allowed = ALLOWED[part] | {part}
        for line, name in _imports(path, module):
            if name.startswith("feedtax.") and _part(name) not in allowed:
                wrong.append(f"{path.relative_to(ROOT)}:{line}: {part} imports {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_only_the_model_imports_mlsysim():
    wrong = [f"{MODULES[m].relative_to(ROOT)}:{line}" for m in MODULES for line, name in _imports(MODULES[m], m)
             if name.split(".")[0] == "mlsysim" and _part(m) != "model"]
    assert not wrong, "mlsysim imported outside feedtax.model:\n" + "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_function_sizes(module):
    path = MODULES[module]
    lines = path.read_text().count("\n")
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)}: {lines} lines (at most {MAX_MODULE_LINES})"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.relative_to(ROOT)}: functions over {MAX_FUNCTION_LINES} lines: {', '.join(long)}"


def test_every_module_says_what_it_owns():
    missing = [str(MODULES[m].relative_to(ROOT)) for m in MODULES
               if MODULES[m].name != "__main__.py" and not ast.get_docstring(ast.parse(MODULES[m].read_text()))]
    assert not missing, "modules without a docstring: " + ", ".join(missing)
