"""What this machine is and does: host facts, disk, memory, page cache, GPU (NVML) and energy counters."""
