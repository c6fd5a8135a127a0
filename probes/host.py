"""Host metadata, pyperf style: what machine and software produced a run's numbers.

Reads only cheap sources (/proc, platform, psutil, package metadata): no torch or mlsysim import.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import psutil

from feedtax.results.probes import DataDir, HostInfo

PACKAGES = ("torch", "numpy", "pyarrow", "protobuf", "orjson", "mlsysim", "pydantic", "nvidia-ml-py", "feedtax")


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


_SOURCE_DIR = Path(__file__).resolve().parent.parent


def git_sha(directory: Path = _SOURCE_DIR) -> str | None:
    """The checkout's commit, with a '-dirty' suffix when it has local changes; None outside git."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=5)

    try:
        top = git("rev-parse", "--show-toplevel")
        # an installed copy inside some other repository (e.g. a venv in a checkout) is not a checkout
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != directory.resolve():
            return None
        sha = git("rev-parse", "HEAD")
        if sha.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def fs_type(path: os.PathLike | str, mountinfo: os.PathLike | str = "/proc/self/mountinfo") -> str:
    """Filesystem type of the mount holding path, or 'unknown'."""
    mount = mount_of(path, mountinfo)
    return mount[1] if mount else "unknown"


def under_hypervisor(cpuinfo: os.PathLike | str = "/proc/cpuinfo") -> bool:
    """Whether the CPU flags say this OS runs in a virtual machine (x86 'hypervisor' flag)."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
        return any(line.startswith("flags") and " hypervisor" in line for line in lines)
    except OSError:
        return False


def mount_of(path: os.PathLike | str,
             mountinfo: os.PathLike | str = "/proc/self/mountinfo") -> tuple[str, str, str] | None:
    """(mount point, fs type, major:minor) of the deepest mount holding path; None if unreadable.

    Later lines are mounted on top of earlier ones, so the last deepest match wins."""
    real = os.path.realpath(path)
    best = None
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or not rest:
            continue
        mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and (best is None or len(mnt) >= len(best[0])):
            best = (mnt, rest[0], fields[2])
    return best


def data_dir(
    path: os.PathLike | str, mountinfo: os.PathLike | str = "/proc/self/mountinfo", sys_root: Path = Path("/sys")
) -> DataDir:
    """Filesystem, block device and rotational flag for a directory."""
    mount = mount_of(path, mountinfo)
    device = rotational = None
    if mount is not None:
        dev = sys_root / "dev" / "block" / mount[2]
        try:
            device = dev.resolve().name
            block = dev.resolve()
            # a partition's queue/ lives in its parent disk's directory
            queue = block / "queue" if (block / "queue").exists() else block.parent / "queue"
            rotational = (queue / "rotational").read_text().strip() == "1"
        except OSError:
            pass
    return DataDir(path=str(path), fs_type=mount[1] if mount else "unknown", mount_point=mount[0] if mount else "",
                   block_device=device, rotational=rotational)


def container() -> str | None:
    if Path("/.dockerenv").exists():
        return "docker"
    if Path("/run/.containerenv").exists():
        return "podman"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    try:
        cgroup = Path("/proc/1/cgroup").read_text()
    except OSError:
        return None
    for name in ("docker", "kubepods", "lxc", "containerd"):
        if name in cgroup:
            return name
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def collect(data_path: os.PathLike | str | None = None) -> HostInfo:
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    uname = platform.uname()
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        freq = None
    from feedtax.probes.gpu import collect_gpus

    gpus = collect_gpus()
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
        cpu_freq_mhz=freq.current if freq else None,
        cpu_freq_max_mhz=(freq.max or None) if freq else None,
        cpu_governor=_read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        load_average_1m=os.getloadavg()[0],
        virtualization="vm" if under_hypervisor() else None,
        container=container(),
        data_dir=data_dir(data_path) if data_path is not None else None,
        gpus=[g.model_dump() for g in gpus.gpus],
        gpu_absent_reason=None if gpus.available else gpus.reason,
    )
