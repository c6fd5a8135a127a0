"""What the probes measured about this machine: host, disk, memory and energy counters."""

from __future__ import annotations

from pydantic import BaseModel, Field

from feedtax.stats import Distribution
from feedtax.vocabulary import CONVENTION


class BlockSizeResult(BaseModel):
    """Cold sequential read speed at one block size (one bounded pass)."""

    block_size_bytes: int
    bytes_read: int
    seq_read_mb_per_s: float
    method: str


class DiskResult(BaseModel):
    """What the disk under `path` does, measured; MB = 1e6 bytes."""

    path: str
    fs_type: str
    size_bytes: int
    block_size_bytes: int
    mb_definition: str = "1 MB = 1e6 bytes"
    seq_write_mb_per_s: float = Field(description="median; buffered writes, fsync included")
    seq_read_mb_per_s_cold: float = Field(description="median; buffered reads after fsync + fadvise(DONTNEED)")
    seq_read_mb_per_s_warm: float = Field(description="median; buffered reads with the file in the page cache")
    seq_read_mb_per_s_direct: float | None = Field(description="median; O_DIRECT reads, None where not allowed")
    rand_read_iops_4k: float = Field(description="median over segments; pread, queue depth 1")
    read_latency_p50_s: float
    read_latency_p99_s: float
    rand_read_ops: int
    rand_read_method: str
    cache_evicted: bool = Field(description="every eviction before a buffered cold read was confirmed by mincore")
    cache_resident_fraction_max: float | None = Field(description="worst page residency right after eviction")
    cache_method: str = "fsync + posix_fadvise(POSIX_FADV_DONTNEED), checked with mincore"
    o_direct: bool
    distributions: dict[str, Distribution] = Field(description="the repeats behind each median, by field name")
    block_sizes: list[BlockSizeResult]
    warnings: list[str]
    elapsed_s: float


class CounterResult(BaseModel):
    name: str  # e.g. "rapl:package-0", "rapl:package-0/dram", "nvml:gpu0"
    source: str  # "rapl" or "nvml"
    energy_j: float | None
    average_power_w: float | None
    update_period_s: float
    readings: int
    wraps: int
    warning: str | None = None


class EnergyResult(BaseModel):
    """Energy each available counter saw over one window; absent sources with the reason."""

    window_s: float
    counters: list[CounterResult]
    absent: dict[str, str]  # source ("rapl", "nvml") -> why it could not be read
    cpu_package_j: float | None  # sum of RAPL package zones
    dram_j: float | None  # sum of RAPL dram zones
    gpu_j: float | None  # sum of NVML GPUs
    warnings: list[str]


class GpuInfo(BaseModel):
    index: int
    name: str
    uuid: str | None
    memory_total_bytes: int | None
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
    cpu_freq_mhz: float | None = None
    cpu_freq_max_mhz: float | None = None
    cpu_governor: str | None = None
    load_average_1m: float | None = None
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

    size_bytes: int = Field(description="bytes in each of the source and destination arrays")
    convention: str = CONVENTION
    copy_mb_per_s_one_core: float
    copy_mb_per_s_all_cores: float
    threads: int
    last_level_cache_bytes: int | None
    distributions: dict[str, Distribution]
    warnings: list[str]
