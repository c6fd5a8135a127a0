"""The GPU's peak FLOP/s for MFU, matched in a registry of nodes (mlsysim's by default)."""

from __future__ import annotations

from feedtax.model.peaks import peak_flops


def test_peak_flops_from_a_registry():
    from types import SimpleNamespace as NS

    class Q:
        def __init__(self, v):
            self.v = v

        def to(self, unit):
            return NS(magnitude=self.v)

    reg = [NS(name="NVIDIA H100", compute=NS(peak_flops=Q(989e12), precision_flops={"fp32": Q(67e12)})),
           NS(name="NVIDIA H100 PCIe", compute=NS(peak_flops=Q(756e12), precision_flops={"fp32": Q(51e12)})),
           NS(name="NVIDIA V100", compute=NS(peak_flops=Q(125e12), precision_flops={"fp32": Q(15.7e12)})),
           NS(name="NVIDIA T4", compute=NS(peak_flops=Q(65e12), precision_flops={"int8": Q(130e12)}))]
    assert peak_flops("NVIDIA H100 PCIe", registry=reg)[0] == 51e12  # longest match wins
    assert peak_flops("NVIDIA H100 80GB HBM3", registry=reg) == (67e12, "mlsysim registry: NVIDIA H100 fp32")
    assert peak_flops("Tesla V100-SXM2-16GB", registry=reg)[0] == 15.7e12  # NVML's older naming
    # no figure for the precision: absent, never another precision's headline peak standing in
    value, why = peak_flops("Tesla T4", registry=reg)
    assert value is None and "no fp32 peak for NVIDIA T4" in why
    assert peak_flops("NVIDIA H100 80GB HBM3", "fp16_dense", registry=reg)[0] is None
    assert peak_flops("Tesla X", registry=reg)[0] is None
    assert peak_flops(None, registry=reg) == (None, "absent: no GPU")
    assert peak_flops("Tesla X", registry=reg, user_peak=1e12)[0] == 1e12
