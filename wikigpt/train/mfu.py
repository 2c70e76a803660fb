"""Model FLOPs utilisation: achieved training FLOP/s over the device's dense bf16 peak.

FLOPs per token come from `GPT.flops_per_token` (6 x params + attention, PaLM appendix B). The
peak is looked up by device name; for an unknown device (and for CPUs, whose peak depends on
cores, clocks and SIMD width) only the achieved TFLOP/s is reported.
"""

from __future__ import annotations

import torch

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from the vendors' data sheets. Matched by
# substring of torch.cuda.get_device_name(), most specific first.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),  # SXM / NVL per GPU
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("L4", 121.0),
    ("A10G", 70.0),
    ("A10", 125.0),
    ("RTX 6000 Ada", 364.0),
    ("RTX A6000", 155.0),
    ("4090", 165.0),
    ("3090", 71.0),
    ("V100", 125.0),  # fp16 (no bf16 on Volta)
    ("T4", 65.0),  # fp16
    ("MI300X", 1307.0),
    ("MI250", 362.0),
]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    import platform

    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_tflops(name: str) -> float | None:
    for key, peak in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return peak
    return None


def throughput(flops_per_token: float, tokens_per_s: float, name: str, n_devices: int = 1) -> dict[str, float | None]:
    """{'achieved_tflops': total over devices, 'mfu': fraction of n_devices x peak, or None}."""
    achieved = flops_per_token * tokens_per_s / 1e12
    peak = peak_tflops(name)
    return {"achieved_tflops": achieved, "mfu": achieved / (peak * n_devices) if peak else None}
