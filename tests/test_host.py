"""Host metadata: the fields a run records, and the git sha only for a real checkout of feedtax."""

from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest

from feedtax.probes import host
from feedtax.probes.gpu import collect_gpus


def test_collect_reports_this_machine():
    h = host.collect()
    assert h.cpu_logical_cores >= 1 and h.memory_total_bytes > 2**28
    assert h.python.count(".") == 2 and h.cpu_model
    assert {"torch", "pyarrow", "protobuf", "orjson", "mlsysim"} <= set(h.packages)
    assert h.packages["pyarrow"] is not None
    assert h.protobuf_backend == "upb"


def test_git_sha_only_for_the_repository_root(tmp_path):
    assert host.git_sha(tmp_path) is None

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "f").write_text("a")
    (tmp_path / "sub").mkdir()
    git("add", "f")
    git("commit", "-qm", "x")
    assert re.fullmatch(r"[0-9a-f]{40}", host.git_sha(tmp_path))
    assert host.git_sha(tmp_path / "sub") is None, "a folder inside another repository is not a checkout of feedtax"
    (tmp_path / "f").write_text("b")
    assert host.git_sha(tmp_path).endswith("-dirty")


MOUNTINFO = (
    "22 1 253:0 / / rw,relatime - ext4 /dev/vda rw\n"
    "30 22 0:40 / /data rw,relatime - tmpfs tmpfs rw\n"
    "31 30 8:16 / /data/my\\040disk rw - xfs /dev/sdb rw\n"
)


def test_fs_type_takes_the_deepest_mount(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    assert host.fs_type("/data/my disk/x", info) == "xfs"
    assert host.fs_type("/data/other", info) == "tmpfs"
    assert host.fs_type("/datamore", info) == "ext4"
    assert host.mount_of("/data/my disk", info) == ("/data/my disk", "xfs", "8:16")
    assert host.fs_type("/x", tmp_path / "missing") == "unknown"


def test_data_dir_reads_device_and_rotational_flag(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(MOUNTINFO)
    sys_root = tmp_path / "sys"
    disk = sys_root / "devices" / "sdb"
    (disk / "queue").mkdir(parents=True)
    (disk / "queue" / "rotational").write_text("1\n")
    (sys_root / "dev" / "block").mkdir(parents=True)
    (sys_root / "dev" / "block" / "8:16").symlink_to(disk)
    d = host.data_dir("/data/my disk/run", mountinfo=info, sys_root=sys_root)
    assert (d.fs_type, d.mount_point, d.block_device, d.rotational) == ("xfs", "/data/my disk", "sdb", True)


def test_this_machines_data_dir_is_described():
    d = host.data_dir("/")
    assert d.fs_type != "unknown" and d.mount_point == "/"


def _failing_pynvml(fail_count: bool = False, lost: tuple[int, ...] = ()):
    """A pynvml stand-in with two GPUs: nvmlDeviceGetCount, or the handles of `lost` ones, raise."""
    m = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    def count():
        if fail_count:
            raise NVMLError("Driver/library version mismatch")
        return 2

    def handle(i):
        if i in lost:
            raise NVMLError("GPU is lost")
        return f"h{i}"

    def unsupported(*args):
        raise NVMLError("Not Supported")

    m.NVMLError, m.shutdowns = NVMLError, 0
    m.nvmlInit = lambda: None
    m.nvmlShutdown = lambda: setattr(m, "shutdowns", m.shutdowns + 1)
    m.nvmlDeviceGetCount, m.nvmlDeviceGetHandleByIndex = count, handle
    m.nvmlSystemGetDriverVersion, m.nvmlSystemGetNVMLVersion = lambda: "550.1", lambda: "12.550.1"
    m.nvmlDeviceGetName = lambda h: f"Fake GPU {h}".encode()
    for name in ("GetMemoryInfo", "GetUUID", "GetCurrPcieLinkGeneration", "GetMaxPcieLinkGeneration",
                 "GetCurrPcieLinkWidth", "GetMaxPcieLinkWidth", "GetTotalEnergyConsumption"):
        setattr(m, "nvmlDevice" + name, unsupported)
    return m


def test_gpu_count_error_is_a_reason_not_a_traceback(monkeypatch):
    fake = _failing_pynvml(fail_count=True)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    r = collect_gpus()
    assert not r.available and r.gpus == [] and "version mismatch" in r.reason
    assert r.driver_version == "550.1" and fake.shutdowns == 1
    assert "version mismatch" in host.collect().gpu_absent_reason  # the host record carries it too


@pytest.mark.parametrize("lost, names, available", [((1,), ["Fake GPU h0"], True), ((0, 1), [], False)])
def test_gpus_whose_handle_fails_are_left_out_and_named(monkeypatch, lost, names, available):
    fake = _failing_pynvml(lost=lost)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    r = collect_gpus()
    assert [g.name for g in r.gpus] == names and r.available is available
    assert all(f"GPU {i}: GPU is lost" in r.reason for i in lost) and fake.shutdowns == 1
