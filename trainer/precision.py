"""The precision a training step runs in, chosen from the GPU's compute capability.

`torch.cuda.is_bf16_supported()` counts emulation (its default since torch 2.3) and says True on
a T4 (capability 7.5), where cuDNN has no bf16 convolutions: every convolution would fall back
to a slow path without tensor cores, and the loss scaler would be off. So the rule is a pure
function of the capability: bf16 from 8.0 (Ampere) up, fp16 with a loss scaler below,
float32 on a CPU; `training.amp_dtype` can force fp16, bf16 or off. What was chosen, and on
which GPU, goes into the log and system.jsonl's first sample, so every figure names its GPU.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

import torch

BF16_NATIVE = (8, 0)
"""The first compute capability whose tensor cores (and cuDNN's kernels) compute bf16."""
NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", None: "fp32"}


@dataclass(frozen=True)
class Precision:
    device: str
    """The GPU's name, or the CPU's."""
    capability: tuple[int, int] | None
    """The GPU's compute capability; None on a CPU."""
    dtype: torch.dtype | None
    """What autocast computes in; None: float32, no autocast."""

    @property
    def scaled(self) -> bool:
        """fp16 needs a loss scaler (its small gradients underflow); bf16 and float32 do not."""
        return self.dtype == torch.float16

    @property
    def name(self) -> str:
        return NAMES[self.dtype]

    @property
    def emulated(self) -> bool:
        """bf16 forced on a GPU that has no native bf16: it runs, slowly."""
        return (
            self.dtype == torch.bfloat16
            and self.capability is not None
            and (self.capability < BF16_NATIVE)
        )

    def record(self) -> dict[str, Any]:
        """For system.jsonl and the benchmarks' rows."""
        capability = None if self.capability is None else "{}.{}".format(*self.capability)
        return {"device_name": self.device, "capability": capability, "dtype": self.name}

    def describe(self) -> str:
        """One phrase for the log: `NVIDIA T4 (capability 7.5), fp16 with loss scaling`."""
        if self.capability is None:
            return f"{self.device} (CPU), fp32"
        scaling = " with loss scaling" if self.scaled else ""
        slow = " (emulated: no native bf16 below capability 8.0)" if self.emulated else ""
        capability = self.record()["capability"]
        return f"{self.device} (capability {capability}), {self.name}{scaling}{slow}"


def choose(setting: str, device: str, capability: tuple[int, int] | None) -> Precision:
    """`setting` is training.amp_dtype (auto, fp16, bf16, off); `capability` None is a CPU."""
    if capability is None or setting == "off":
        dtype = None
    elif setting == "fp16":
        dtype = torch.float16
    elif setting == "bf16":
        dtype = torch.bfloat16
    else:
        dtype = torch.bfloat16 if capability >= BF16_NATIVE else torch.float16
    return Precision(device, capability, dtype)


def for_device(setting: str, device: torch.device) -> Precision:
    """`choose` for this process's device, asking CUDA for its name and capability."""
    if device.type != "cuda":
        return choose(setting, platform.processor() or platform.machine() or "cpu", None)
    capability = torch.cuda.get_device_capability(device)
    return choose(setting, torch.cuda.get_device_name(device), capability)
