#!/usr/bin/env python
"""Enumerate the NAS-Bench-101 space and count its unique module hashes (expected: 423,624).

The space is every upper-triangular graph of 2 to 7 vertices with every interior op labelling,
pruned as the benchmark's ``ModelSpec`` prunes, kept when the input reaches the output and the
pruned graph has at most 9 edges, and named by its module hash. Hashing all ~2 million matrices
times 243 labellings would take hours, so the work is cut in three steps, each checked:

1. Pruning, vectorised over all matrices of each size: the set of pruned graphs that come out is
   checked to be exactly the set of "full" DAGs (every vertex on an input-output path, <= 9
   edges) that :func:`nas.searchspaces.nb101.full_dags` lists, so only those need labelling.
2. Full DAGs that are the same graph up to renumbering the interior vertices give the same
   hashes for the same labelling multiset, so one representative per isomorphism class is kept
   (:func:`nas.searchspaces.nb101.dag_structures`).
3. Every labelling of every representative is hashed, the representatives split over worker
   processes; the union of the hash sets is the space.

Usage: ``python scripts/enumerate_nb101.py [--workers 2]``. Prints counts per vertex count and
the runtime; exits 1 if the total is not 423,624.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from multiprocessing import Pool

import numpy as np

from nas.searchspaces.nb101 import (
    MAX_EDGES,
    MAX_VERTICES,
    NUM_CELLS,
    OPS,
    dag_structures,
    full_dags,
    module_hash,
)


def pruned_graphs(n: int) -> set[tuple[int, int]]:
    """``(vertices, edge bitmask)`` of the pruned form of every valid n-vertex matrix."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    codes = np.arange(1 << len(pairs), dtype=np.int64)
    edge = {pair: ((codes >> k) & 1).astype(bool) for k, pair in enumerate(pairs)}
    forward = [np.ones(len(codes), dtype=bool)]
    for v in range(1, n):
        forward.append(np.logical_or.reduce([forward[u] & edge[u, v] for u in range(v)]))
    backward = [None] * n
    backward[n - 1] = np.ones(len(codes), dtype=bool)
    for v in range(n - 2, -1, -1):
        backward[v] = np.logical_or.reduce([backward[w] & edge[v, w] for w in range(v + 1, n)])
    keep = [f & b for f, b in zip(forward, backward)]
    size = np.sum(keep, axis=0)
    rank = np.cumsum(keep, axis=0) - 1  # new number of each kept vertex
    new_code = np.zeros(len(codes), dtype=np.int64)
    new_edges = np.zeros(len(codes), dtype=np.int64)
    for i, j in pairs:
        present = edge[i, j] & keep[i] & keep[j]
        a, b = rank[i], rank[j]
        position = a * size - a * (a + 1) // 2 + (b - a - 1)  # row-major pair index among `size`
        new_code |= np.where(present, np.left_shift(1, np.where(present, position, 0)), 0)
        new_edges += present
    valid = forward[n - 1] & (new_edges <= MAX_EDGES)
    return set(zip(size[valid].tolist(), new_code[valid].tolist()))


def hash_labellings(matrices: list[tuple[tuple[int, ...], ...]]) -> set[str]:
    """Module hashes of every interior labelling of each matrix."""
    out = set()
    for matrix in matrices:
        for interior in itertools.product(range(len(OPS)), repeat=len(matrix) - 2):
            out.add(module_hash(matrix, (-1, *interior, -2)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="processes for the hashing step")
    args = parser.parse_args()
    start = time.perf_counter()

    full = {(n, int(c)) for n in range(2, MAX_VERTICES + 1) for c in full_dags(n)}
    pruned: set[tuple[int, int]] = set()
    for n in range(2, MAX_VERTICES + 1):
        pruned |= pruned_graphs(n)
    print(
        f"step 1: {len(pruned):,} distinct pruned graphs from all matrices of 2-{MAX_VERTICES} "
        f"vertices; equal to the {len(full):,} full DAGs: {pruned == full} "
        f"({time.perf_counter() - start:.1f} s)",
        flush=True,
    )
    if pruned != full:
        return 1

    structures = {n: dag_structures(n) for n in range(2, MAX_VERTICES + 1)}
    print(
        "step 2: isomorphism classes per vertex count: "
        + ", ".join(f"{n}: {len(s):,}" for n, s in structures.items())
        + f" ({time.perf_counter() - start:.1f} s)",
        flush=True,
    )

    hashes: set[str] = set()
    per_size = {}
    with Pool(args.workers) as pool:
        for n, mats in structures.items():
            chunks = [mats[k :: args.workers * 4] for k in range(args.workers * 4)]
            found = set().union(*pool.map(hash_labellings, [c for c in chunks if c]))
            per_size[n] = len(found - hashes)
            hashes |= found
    elapsed = time.perf_counter() - start
    print("step 3: new hashes per vertex count: " + ", ".join(f"{n}: {k:,}" for n, k in per_size.items()))
    print(
        f"unique module hashes: {len(hashes):,} (expected {NUM_CELLS:,}) in {elapsed:.1f} s with {args.workers} workers"
    )
    return 0 if len(hashes) == NUM_CELLS else 1


if __name__ == "__main__":
    sys.exit(main())
