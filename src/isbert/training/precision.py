"""Which arithmetic a training run uses: ``--precision`` resolved against the hardware it runs on."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from isbert.errors import IsbertError

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of CPUs with native bfloat16 matrix arithmetic; elsewhere bf16 autocast is emulated and slow."""

AUTO_BF16_ON_CPU = True
"""Whether ``auto`` picks bf16 autocast on a CPU with native bf16: it matched fp32 on both backbones (docs/training.md,
"Speed"; experiments/results/training-speed*.md) at 1.5x its speed."""

AUTO_ON_GPU = "fp32"
"""What ``auto`` means on a GPU: fp32, not bf16 autocast. At the paper's batch (32, and 64) a BERT-base training step
on an H100 and on an H200 ran slower in bf16 than in fp32 (benchmarks/results/training_step_gpu.md), and ``isbert
train`` end to end kept 0.96-0.99x of the released fp32 loop in bf16 against 1.43-1.47x in fp32
(training_throughput_gpu.md): at these sizes the step waits on kernel launches, which autocast adds to.
``--precision bf16`` (or fp16) stays for larger batches and models."""


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
            return AUTO_ON_GPU
        return "bf16" if AUTO_BF16_ON_CPU and cpu_has_bf16() else "fp32"
    if precision == "fp16" and not use_cuda:
        raise IsbertError("--precision fp16 needs a GPU; on CPU use bf16 or fp32")
    return precision


class TrainerFlags(TypedDict):
    bf16: bool
    fp16: bool


def trainer_flags(resolved: str) -> TrainerFlags:
    """The Trainer's mixed-precision switches (on CPU, accelerate turns ``bf16`` into CPU autocast)."""
    return {"bf16": resolved == "bf16", "fp16": resolved == "fp16"}
