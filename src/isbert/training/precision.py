"""Which arithmetic a training run uses: ``--precision`` resolved against the hardware it runs on."""

from __future__ import annotations

from pathlib import Path

import torch

from isbert.errors import IsbertError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of CPUs with native bfloat16 matrix arithmetic; elsewhere bf16 autocast is emulated and slow."""

AUTO_BF16_ON_CPU = True
"""Whether ``auto`` picks bf16 autocast on a CPU with native bf16: it matched fp32 on both backbones (docs/training.md,
"Speed"; experiments/results/training-speed*.md) at 1.5x its speed."""


def cpu_has_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True on CPUs with AVX512-BF16 or AMX-BF16 (read from the kernel's flags; False where they can't be read)."""
    try:
        flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return False
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, use_cuda: bool) -> str:
    """``fp32``, ``bf16`` or ``fp16``: what ``precision`` means on this machine (``auto`` decided here)."""
    if precision == "auto":
        if use_cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if AUTO_BF16_ON_CPU and cpu_has_bf16() else "fp32"
    if precision == "fp16" and not use_cuda:
        raise IsbertError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return precision


def trainer_flags(resolved: str) -> dict[str, bool]:
    """The Trainer's mixed-precision switches (on CPU, accelerate turns ``bf16`` into CPU autocast)."""
    return {"bf16": resolved == "bf16", "fp16": resolved == "fp16"}
