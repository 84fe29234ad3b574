"""Whether torch's Gaussian draws depend on the CPU: the same seeded ``torch.randn`` under ATen's
vectorised kernels (this CPU's capability) and its scalar ones (``ATEN_CPU_CAPABILITY=default``,
what a CPU without AVX2 runs), each in its own process.

    python scripts/randn_by_cpu.py            # prints how many of 100,000 draws differ, and by how much
"""

from __future__ import annotations

import numpy as np

from nas.testing.variation import python_output

DRAW = (
    "import sys, torch; g = torch.Generator().manual_seed(0); "
    "sys.stdout.buffer.write(torch.randn(100000, generator=g).numpy().tobytes())"
)


def draws(setting: str) -> np.ndarray:
    return np.frombuffer(python_output(setting, DRAW), dtype=np.float32)


if __name__ == "__main__":
    a, b = draws("baseline"), draws("ATen default")
    diff = np.abs(a - b)
    print(
        f"{int((diff > 0).sum()):,} of {a.size:,} draws differ ({(diff > 0).mean():.0%}); "
        f"largest absolute difference {diff.max():.2e}, relative {(diff / np.abs(a).clip(1e-30)).max():.2e}"
    )
