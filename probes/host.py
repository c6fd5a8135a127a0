"""Host metadata, pyperf style: what machine and software produced a run's numbers.

Reads only cheap sources (/proc, platform, psutil, package metadata): no torch or mlsysim import.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil
from pydantic import BaseModel

PACKAGES = ("torch", "numpy", "pyarrow", "protobuf", "orjson", "mlsysim", "pydantic", "nvidia-ml-py", "feedtax")


class HostInfo(BaseModel):
    cpu_model: str
    cpu_logical_cores: int
    cpu_physical_cores: int | None
    cpu_affinity_cores: int | None
    memory_total_bytes: int
    os: str
    kernel: str
    machine: str
    python: str
    python_implementation: str
    packages: dict[str, str | None]
    protobuf_backend: str | None
    git_sha: str | None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def protobuf_backend() -> str | None:
    try:
        from google.protobuf.internal import api_implementation
    except ImportError:
        return None
    return api_implementation.Type()


def git_sha(directory: Path = Path(__file__).resolve().parent.parent) -> str | None:
    """The checkout's commit, with a '-dirty' suffix when it has local changes; None outside git."""
    try:
        sha = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(directory), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect() -> HostInfo:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    uname = platform.uname()
    return HostInfo(
        cpu_model=cpu_model(),
        cpu_logical_cores=psutil.cpu_count(logical=True) or 0,
        cpu_physical_cores=psutil.cpu_count(logical=False),
        cpu_affinity_cores=affinity,
        memory_total_bytes=psutil.virtual_memory().total,
        os=platform.platform(),
        kernel=uname.release,
        machine=uname.machine,
        python=sys.version.split()[0],
        python_implementation=platform.python_implementation(),
        packages=package_versions(),
        protobuf_backend=protobuf_backend(),
        git_sha=git_sha(),
    )
