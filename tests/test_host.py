"""Host metadata: the fields a run records, and the git sha only for a real checkout of feedtax."""

from __future__ import annotations

import re
import subprocess

from probes import host


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
        subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True)

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
