"""The machine a score was computed on: what can move a score by floating-point rounding.

Math libraries choose their code paths per CPU (oneDNN and MKL by instruction set, reductions by
thread count), so the same protocol can give a slightly different score on another machine. The
store and the archives keep, for every score, a short digest of :func:`machine_info`, and the
full record once per digest, so ``nas store info`` and the results can say where scores came from.

>>> info = machine_info(threads=1)
>>> sorted(info)
['cpu', 'isa', 'machine', 'mkl', 'onednn', 'python', 'threads', 'torch']
>>> len(machine_digest(info))
12
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from functools import lru_cache
from typing import Any

#: The instruction-set extensions that change which kernels the math libraries run.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "sse4_1", "neon", "asimd")


@lru_cache(maxsize=1)
def _cpu() -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and its ISA flags among :data:`ISA_FLAGS` (Linux; elsewhere the
    platform's processor string and no flags)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key == "model name" and value.strip():
                    model = value.strip()
                elif key in ("flags", "features"):
                    flags |= set(value.split())
                if key == "" and flags:  # the first processor's block is enough
                    break
    except OSError:
        pass
    return re.sub(r"\s+", " ", model), tuple(f for f in ISA_FLAGS if f in flags)


@lru_cache(maxsize=1)
def _libraries() -> tuple[str, str, str]:
    """torch's version and the MKL and oneDNN versions it was built with."""
    import torch

    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    onednn = re.search(r"MKL-DNN v([\w.\-]+)", config)
    return torch.__version__, mkl.group(1) if mkl else "", onednn.group(1) if onednn else ""


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model and ISA flags, architecture, Python, torch, MKL and oneDNN versions, and torch's
    thread count (``threads``; default: torch's current one)."""
    import torch

    cpu, isa = _cpu()
    version, mkl, onednn = _libraries()
    return {
        "cpu": cpu,
        "isa": list(isa),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": version,
        "mkl": mkl,
        "onednn": onednn,
        "threads": int(threads if threads is not None else torch.get_num_threads()),
    }


def machine_digest(info: dict[str, Any]) -> str:
    """A short stable key of a machine record."""
    text = json.dumps(info, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def describe(info: dict[str, Any]) -> str:
    """One line: ``AMD EPYC (avx2, fma), torch 2.13.0, MKL 2024.2, oneDNN 3.12.0, 1 thread``."""
    isa = f" ({', '.join(info.get('isa') or []) or 'no listed ISA flags'})"
    libs = ", ".join(f"{name} {info[key]}" for name, key in (("MKL", "mkl"), ("oneDNN", "onednn")) if info.get(key))
    threads = info.get("threads")
    return (
        f"{info.get('cpu', '?')}{isa}, torch {info.get('torch', '?')}"
        + (f", {libs}" if libs else "")
        + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")
    )
