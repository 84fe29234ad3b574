"""Where networks run: ``cpu``, ``cuda`` (or ``cuda:N``) or ``mps``.

The policy that keeps scores comparable across devices: a network is always built and
initialised on the CPU (``torch.manual_seed(seed)`` gives the same weights everywhere), then
moved with its input batch to the device. So the device is not part of a score's key: it changes
a score only by floating-point rounding, as another CPU does, and archived scores are verified
within each proxy's tolerance rather than bit for bit.

>>> resolve_device("cpu")
'cpu'
>>> resolve_device("tpu")
Traceback (most recent call last):
...
nas.errors.NasError: unknown device 'tpu'; expected cpu, cuda, cuda:N or mps
"""

from __future__ import annotations

import re

from nas.errors import NasError

_DEVICE = re.compile(r"^(cpu|mps|cuda(?::\d+)?)$")


def resolve_device(device: str | None = None) -> str:
    """The device to use: ``device`` checked, or CUDA when present, else the CPU."""
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(device).strip().lower()
    if not _DEVICE.match(text):
        raise NasError(f"unknown device {device!r}; expected cpu, cuda, cuda:N or mps")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise NasError(f"device {text}: CUDA is not available here (torch {torch.__version__}); use cpu")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise NasError(f"device {text}: there are {torch.cuda.device_count()} CUDA device(s)")
    if text == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise NasError("device mps: Apple's MPS backend is not available here; use cpu")
    return text
