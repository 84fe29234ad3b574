"""Input batches for zero-cost proxies, and the spec that makes them reproducible.

A proxy's score depends on its inputs, so the input spec (source, dataset, batch size, seed) is
part of every score's protocol. Sources:

- ``gaussian``: seeded standard-normal images (and uniform random labels);
- ``cifar10:DIR`` / ``cifar100:DIR``: the official CIFAR python batches (``data_batch_1..5``,
  ``test_batch`` / ``train``, ``test``), read with our own reader;
- ``npz:FILE``: arrays ``x`` (N, C, H, W) float or uint8 and optional ``y`` (N,) int.

Real images are scaled to [0, 1] and normalised per channel with the dataset's statistics
(those the benchmarks trained with). ImageNet16-120 is 16x16 with 120 classes; no pixels of it
ship here, so it is available as Gaussian inputs of its shape or a user's ``.npz``.
"""

from __future__ import annotations

import pickle
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.errors import NasError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


DATASETS = {
    "cifar10": DatasetInfo("cifar10", 10, 32, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": DatasetInfo("cifar100", 100, 32, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet16-120": DatasetInfo(
        "imagenet16-120", 120, 16, (122.68 / 255, 116.66 / 255, 104.01 / 255), (63.22 / 255, 61.26 / 255, 65.09 / 255)
    ),
}
_DATASET_ALIASES = {"imagenet16": "imagenet16-120", "imagenet": "imagenet16-120", "imagenet16_120": "imagenet16-120"}
SOURCES = ("gaussian", "cifar10", "cifar100", "npz")


def dataset_info(name: str) -> DatasetInfo:
    key = _DATASET_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in DATASETS:
        raise NasError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key]


@dataclass(frozen=True)
class InputSpec:
    """Where a proxy's inputs come from. Hashable; :meth:`protocol` goes into score keys."""

    source: str = "gaussian"
    dataset: str = "cifar10"
    batch_size: int = 64
    seed: int = 0
    path: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise NasError(f"unknown input source {self.source!r}; expected one of {', '.join(SOURCES)}")
        object.__setattr__(self, "dataset", dataset_info(self.dataset).name)
        if self.source in ("cifar10", "cifar100") and self.source != self.dataset:
            raise NasError(f"input source {self.source} cannot stand for dataset {self.dataset}")
        if self.source != "gaussian" and not self.path:
            raise NasError(f"input source {self.source} needs a path (e.g. {self.source}:DIR)")
        if int(self.batch_size) < 1:
            raise NasError(f"batch size must be positive, got {self.batch_size}")

    @property
    def info(self) -> DatasetInfo:
        return DATASETS[self.dataset]

    def protocol(self) -> dict[str, Any]:
        """What identifies the inputs (the path's content is identified by its file names, not
        its location, so moving a dataset does not invalidate stored scores)."""
        out = asdict(self)
        out["path"] = Path(self.path).name if self.path else None
        return out


def parse_data_arg(text: str | None, dataset: str = "cifar10", batch_size: int = 64, seed: int = 0) -> InputSpec:
    """``gaussian``, ``cifar10:DIR``, ``cifar100:DIR`` or ``npz:FILE`` -> :class:`InputSpec`."""
    text = (text or "gaussian").strip()
    source, _, path = text.partition(":")
    source = source.lower()
    if source in ("cifar10", "cifar100"):
        dataset = source
    return InputSpec(source=source, dataset=dataset, batch_size=batch_size, seed=seed, path=path or None)


@dataclass
class Batch:
    """One batch of inputs (normalised float32, N x C x H x W) and integer labels."""

    inputs: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    spec: InputSpec

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def to(self, device: str | torch.device) -> Batch:
        """The same batch on ``device`` (itself when already there)."""
        if self.inputs.device == torch.device(device):
            return self
        return Batch(self.inputs.to(device), self.labels.to(device), self.num_classes, self.spec)

    def split(self, parts: int) -> list[Batch]:
        """Equal consecutive chunks (e.g. ZiCo's two batches)."""
        xs, ys = self.inputs.chunk(parts), self.labels.chunk(parts)
        return [Batch(x, y, self.num_classes, self.spec) for x, y in zip(xs, ys)]


def load_batch(spec: InputSpec) -> Batch:
    """The batch a spec describes; the same spec always gives the same tensors."""
    info = spec.info
    gen = torch.Generator().manual_seed(spec.seed)
    if spec.source == "gaussian":
        x = torch.randn(spec.batch_size, 3, info.input_size, info.input_size, generator=gen)
        y = torch.randint(0, info.num_classes, (spec.batch_size,), generator=gen)
        return Batch(x, y, info.num_classes, spec)
    if spec.source == "npz":
        images, labels = _read_npz(str(spec.path))
    else:
        images, labels = _read_cifar(spec.source, spec.path)
    if spec.batch_size > len(images):
        raise NasError(f"{spec.path!r} holds {len(images)} images, fewer than the batch size {spec.batch_size}")
    pick = torch.randperm(len(images), generator=gen)[: spec.batch_size].numpy()
    x = torch.from_numpy(np.ascontiguousarray(images[pick]))
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
        mean = torch.tensor(info.mean).view(1, 3, 1, 1)
        std = torch.tensor(info.std).view(1, 3, 1, 1)
        x = (x - mean) / std
    y = (
        torch.from_numpy(labels[pick].astype(np.int64))
        if labels is not None
        else torch.randint(0, info.num_classes, (spec.batch_size,), generator=gen)
    )
    return Batch(x.float().contiguous(), y, info.num_classes, spec)


# -- readers ---------------------------------------------------------------------------------------
_CIFAR_FILES = {
    "cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"], b"labels"),
    "cifar100": (["train"], b"fine_labels"),
}
_CIFAR_TEST_FILES = {"cifar10": (["test_batch"], b"labels"), "cifar100": (["test"], b"fine_labels")}
SPLITS = ("train", "test")


def load_images(source: str, path: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of one split (``train``: the training batches, ``test``: the test batch) of
    an official CIFAR python directory, normalised as the benchmarks do (float32 N x 3 x 32 x 32),
    and their labels; what trains a network (the supernet) and what evaluates it never overlap."""
    if source not in _CIFAR_FILES:
        raise NasError(f"images for training come from cifar10:DIR or cifar100:DIR, not {source!r}")
    if split not in SPLITS:
        raise NasError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    images, labels = _read_cifar(source, path, split)
    info = DATASETS[source]
    x = torch.from_numpy(images).float().div_(255.0)
    x = (x - torch.tensor(info.mean).view(1, 3, 1, 1)) / torch.tensor(info.std).view(1, 3, 1, 1)
    return x.contiguous(), torch.from_numpy(labels)


#: scikit-learn's bundled digits (1,797 8x8 images): a fixed split, 1,347 to train and 450 to test.
DIGITS_TRAIN = 1347


def load_digits(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of scikit-learn's digits as float32 (N, 64) in [0, 1] and labels; the split is a
    fixed permutation (seed 0), the same on every machine."""
    if split not in SPLITS:
        raise NasError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    from nas.optional import need

    datasets = need("sklearn.datasets", "grow", "the digits dataset")
    bunch = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    pick = order[:DIGITS_TRAIN] if split == "train" else order[DIGITS_TRAIN:]
    x = torch.from_numpy(np.asarray(bunch.data, dtype=np.float32)[pick] / 16.0)
    return x.contiguous(), torch.from_numpy(np.asarray(bunch.target, dtype=np.int64)[pick])


@lru_cache(maxsize=4)
def _read_cifar(source: str, directory: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """All images of one split of an official CIFAR python directory as uint8 (N, 3, 32, 32)."""
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        raise NasError(f"{source} directory {directory!r} does not exist")
    names, label_key = (_CIFAR_FILES if split == "train" else _CIFAR_TEST_FILES)[source]
    images, labels = [], []
    for name in names:
        path = folder / name
        if not path.is_file():
            raise NasError(f"{str(path)!r} is missing; expected the official {source} python batches")
        try:
            with open(path, "rb") as f:
                blob = pickle.load(f, encoding="bytes")
            data = np.asarray(blob[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(blob[label_key], dtype=np.int64))
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
            raise NasError(f"{str(path)!r} is not an official {source} batch ({type(err).__name__}: {err})") from None
    return np.concatenate(images), np.concatenate(labels)


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray | None]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise NasError(f"npz file {path!r} does not exist")
    try:
        with np.load(file) as arrays:
            if "x" not in arrays:
                raise NasError(f"{path!r} has no array 'x' (expected x: N x C x H x W, optional y: N)")
            x = arrays["x"]
            y = arrays["y"] if "y" in arrays else None
    except (OSError, ValueError) as err:
        raise NasError(f"cannot read npz file {path!r}: {err}") from None
    if x.ndim != 4:
        raise NasError(f"{path!r}: x has shape {x.shape}, expected N x C x H x W")
    return x, y
