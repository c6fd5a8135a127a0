"""What the probes measured about this machine: host, disk, memory and energy counters."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from feedtax.results.metrics import AtLeastOne
from feedtax.stats import Distribution
from feedtax.vocabulary import (
    BYTES,
    CONVENTION,
    CORES,
    COUNT,
    DURATION_S,
    FRACTION,
    IOPS,
    JOULES,
    MB_PER_S,
    MEMORY_BYTES,
    MHZ,
    SPEEDUP,
    WATTS,
)


class BlockSizeResult(BaseModel):
    """Cold sequential read speed at one block size (one bounded pass)."""

    block_size_bytes: Annotated[int, BYTES]
    bytes_read: Annotated[int, BYTES]
    seq_read_mb_per_s: Annotated[float, MB_PER_S]
    method: str


class DiskResult(BaseModel):
    """What the disk under `path` does, measured; MB = 1e6 bytes."""

    path: str
    fs_type: str
    size_bytes: Annotated[int, BYTES]
    block_size_bytes: Annotated[int, BYTES]
    mb_definition: str = "1 MB = 1e6 bytes"
    seq_write_mb_per_s: Annotated[float, MB_PER_S] = Field(description="median; buffered writes, fsync included")
    seq_read_mb_per_s_first: Annotated[float, MB_PER_S] = Field(
        description="median over writes of the first read of what each wrote (the model's disk read)")
    first_read_method: str = Field(
        description="O_DIRECT, or buffered after eviction where the filesystem refuses O_DIRECT")
    repeat_read_speedup: Annotated[float | None, SPEEDUP] = Field(
        description="re-reads of the same file (O_DIRECT where allowed, else cold) over the first read; None in "
                    "files from before schema 5")
    repeats_cached_below_os: bool | None = Field(
        description="re-reads ran over 1.2x the first read: a cache below this OS served them; None before schema 5")
    seq_read_mb_per_s_cold: Annotated[float, MB_PER_S] = Field(
        description="median; buffered re-reads after fsync + fadvise(DONTNEED)")
    seq_read_mb_per_s_warm: Annotated[float, MB_PER_S] = Field(
        description="median; buffered reads with the file in the page cache")
    seq_read_mb_per_s_direct: Annotated[float | None, MB_PER_S] = Field(
        description="median; O_DIRECT re-reads, None where not allowed")
    rand_read_iops_4k: Annotated[float, IOPS] = Field(description="median over segments; pread, queue depth 1")
    read_latency_p50_s: Annotated[float, DURATION_S]
    read_latency_p99_s: Annotated[float, DURATION_S]
    rand_read_ops: Annotated[int, COUNT]
    rand_read_method: str
    cache_evicted: bool = Field(description="every eviction before a buffered cold read was confirmed by mincore")
    cache_resident_fraction_max: Annotated[float | None, FRACTION] = Field(
        description="worst page residency right after eviction")
    cache_method: str = "fsync + posix_fadvise(POSIX_FADV_DONTNEED), checked with mincore"
    o_direct: bool
    distributions: dict[str, Distribution] = Field(description="the repeats behind each median, by field name")
    block_sizes: list[BlockSizeResult]
    warnings: list[str]
    elapsed_s: Annotated[float, DURATION_S]


class CounterResult(BaseModel):
    name: str  # e.g. "rapl:package-0", "rapl:package-0/dram", "nvml:gpu0"
    source: str  # "rapl" or "nvml"
    energy_j: Annotated[float | None, JOULES]
    average_power_w: Annotated[float | None, WATTS]
    update_period_s: Annotated[float, DURATION_S]
    readings: Annotated[int, COUNT]
    wraps: Annotated[int, COUNT]
    warning: str | None = None


class EnergyResult(BaseModel):
    """Energy each available counter saw over one window; absent sources with the reason."""

    window_s: Annotated[float, DURATION_S]
    counters: list[CounterResult]
    absent: dict[str, str]  # source ("rapl", "nvml") -> why it could not be read
    cpu_package_j: Annotated[float | None, JOULES]  # sum of RAPL package zones
    dram_j: Annotated[float | None, JOULES]  # sum of RAPL dram zones
    gpu_j: Annotated[float | None, JOULES]  # sum of NVML GPUs
    warnings: list[str]


class GpuInfo(BaseModel):
    index: int
    name: str
    uuid: str | None
    memory_total_bytes: Annotated[int | None, MEMORY_BYTES]
    pcie_link_gen_current: int | None
    pcie_link_gen_max: int | None
    pcie_link_width_current: int | None
    pcie_link_width_max: int | None
    total_energy_mj: int | None  # NVML's counter since the driver loaded; None where the GPU lacks it (pre-Volta)


class GpuReport(BaseModel):
    """All GPUs NVML sees, or available=False with the reason."""

    available: bool
    reason: str | None = None
    driver_version: str | None = None
    nvml_version: str | None = None
    gpus: list[GpuInfo] = []


class DataDir(BaseModel):
    """Where the run's data lives: the filesystem and block device behind the numbers."""

    path: str
    fs_type: str
    mount_point: str
    block_device: str | None
    rotational: bool | None = Field(description="from /sys/block/DEV/queue/rotational; None where unreadable")


class HostInfo(BaseModel):
    cpu_model: str
    cpu_logical_cores: Annotated[int, CORES]
    cpu_physical_cores: Annotated[int | None, CORES]
    cpu_affinity_cores: Annotated[int | None, CORES]
    memory_total_bytes: Annotated[int, MEMORY_BYTES]
    os: str
    kernel: str
    machine: str
    python: str
    python_implementation: str
    packages: dict[str, str | None]
    protobuf_backend: str | None
    git_sha: str | None
    cpu_freq_mhz: Annotated[float | None, MHZ] = None
    cpu_freq_max_mhz: Annotated[float | None, MHZ] = None
    cpu_governor: str | None = None
    load_average_1m: Annotated[float | None, Field(ge=0, le=1e6)] = Field(
        None, description="runnable processes, averaged over a minute (a million is beyond any host)")
    virtualization: str | None = Field(None, description="'vm' when the CPU reports a hypervisor, else None")
    container: str | None = Field(None, description="docker/podman/kubernetes/lxc when detected, else None")
    data_dir: DataDir | None = None
    gpus: list[dict] = Field(default_factory=list, description="NVML's view of each GPU; empty without NVML")
    gpu_absent_reason: str | None = None

    @property
    def usable_cores(self) -> int:
        """The cores this process may run on: its CPU affinity where known, else every logical core."""
        return self.cpu_affinity_cores or self.cpu_logical_cores


class MemoryResult(BaseModel):
    """Copy bandwidth of this machine's memory; medians with their distributions."""

    size_bytes: Annotated[int, BYTES] = Field(description="bytes in each of the source and destination arrays")
    convention: str = CONVENTION
    copy_mb_per_s_one_core: Annotated[float, MB_PER_S]
    copy_mb_per_s_all_cores: Annotated[float, MB_PER_S]
    threads: AtLeastOne
    last_level_cache_bytes: Annotated[int | None, BYTES]
    distributions: dict[str, Distribution]
    warnings: list[str]
