"""NAS-Bench-101: 423,624 unique cells (module hashes).

A cell is a DAG of at most 7 vertices and 9 edges given by an upper-triangular 0/1 adjacency
matrix; vertex 0 is ``input``, the last vertex ``output``, and every interior vertex carries one
of ``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``. A :class:`Cell` is always stored
*pruned*, exactly as the benchmark's ``ModelSpec`` prunes: vertices that lie on no input-to-output
path are removed, and the limits (7 vertices, 9 edges) apply to the pruned graph, which is how the
benchmark's ``is_valid`` judges a spec.

Canonical string: the matrix rows as bit strings joined by ``-``, a ``:``, then the op names
joined by ``,``. A 4-vertex cell whose input feeds a 3x3 conv and a max-pool that both feed the
output reads::

    0110-0001-0001-0000:input,conv3x3-bn-relu,maxpool3x3,output

The benchmark names a cell by its module hash (``NB101.key``), which is equal for isomorphic
cells; :class:`Cell` equality is equality of the labelled graph, so two isomorphic cells are
different values with one key. NAS-Bench-101 has no official index, so ``from_index`` and
``index_of`` refuse; iteration enumerates the space lazily in this module's own order (one cell
per hash; the full pass takes a few minutes).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from nas.errors import InvalidArchitectureError
from nas.searchspaces.base import SearchSpace
from nas.searchspaces.nb101_network import INPUT, OPS, OUTPUT, NB101Network, network_params

if TYPE_CHECKING:
    import optuna
    from torch import nn

MAX_VERTICES = 7
MAX_EDGES = 9
#: The number of unique module hashes, as the benchmark reports it.
NUM_CELLS = 423_624
#: Labels of the module hash: input -1, output -2, interior ops by their index in ``OPS``.
LABELS = {INPUT: -1, OUTPUT: -2, **{op: i for i, op in enumerate(OPS)}}
#: Optuna names over the full 7-vertex graph: "e0-1" is the edge from vertex 0 to vertex 1.
EDGE_PARAMS = tuple(f"e{i}-{j}" for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES))
OP_PARAMS = tuple(f"op{v}" for v in range(1, MAX_VERTICES - 1))

_HASH_RE = re.compile(r"[0-9a-f]{32}", re.IGNORECASE)
_FORMAT_HINT = (
    "expected rows of 0/1 joined by '-', ':', then ops joined by ',' "
    "like '0110-0001-0001-0000:input,conv3x3-bn-relu,maxpool3x3,output'"
)


def _describe(matrix: Any, ops: Any) -> str:
    """The input as the error messages quote it: the canonical form if it has that shape."""
    try:
        rows = "-".join("".join(str(int(x)) for x in row) for row in matrix)
        return f"{rows}:{','.join(str(op) for op in ops)}"
    except (TypeError, ValueError):
        return f"matrix={matrix!r}, ops={ops!r}"


def _prune(matrix: tuple[tuple[int, ...], ...], ops: tuple[str, ...]):
    """Drop the vertices that are not both reachable from the input and able to reach the
    output (``ModelSpec._prune``); ``None`` when the output is cut off from the input."""
    n = len(matrix)
    forward = {0}
    for v in range(1, n):  # topological order: a vertex's sources come first
        if any(matrix[u][v] for u in forward):
            forward.add(v)
    backward = {n - 1}
    for v in range(n - 2, -1, -1):
        if any(matrix[v][w] for w in backward):
            backward.add(v)
    if n - 1 not in forward:
        return None
    keep = sorted(forward & backward)
    if len(keep) == n:
        return matrix, ops
    return tuple(tuple(matrix[i][j] for j in keep) for i in keep), tuple(ops[i] for i in keep)


def _check_spec(matrix: Any, ops: Any) -> tuple[Any, str]:
    """``(pruned spec as tuples, "")`` for a valid spec, else ``(None, what is wrong)``."""
    if isinstance(matrix, (str, bytes)):
        return None, "the matrix must be a square list of 0/1 rows, not a string"
    try:
        rows = [list(row) for row in matrix]
    except TypeError:
        return None, "the matrix must be a square list of 0/1 rows"
    n = len(rows)
    if not 2 <= n <= MAX_VERTICES:
        return None, f"{n} vertices (expected 2 to {MAX_VERTICES})"
    if any(len(row) != n for row in rows):
        return None, f"the matrix is not square (expected {n} rows of {n} entries)"
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            if not (isinstance(x, (Real, np.bool_)) and x in (0, 1)):
                return None, f"entry ({i}, {j}) is {x!r} (expected 0 or 1)"
            if x and j <= i:
                return None, (
                    f"edge ({i}, {j}) is on or below the diagonal (expected an "
                    "upper-triangular matrix: edges go from lower to higher vertices)"
                )
    if isinstance(ops, (str, bytes)):
        return None, "ops must be a list of op names, not a string"
    try:
        names = list(ops)
    except TypeError:
        return None, "ops must be a list of op names"
    if len(names) != n:
        return None, f"{len(names)} ops for {n} vertices (expected one op per vertex)"
    if names[0] != INPUT or names[-1] != OUTPUT:
        return None, f"the first op must be {INPUT!r} and the last {OUTPUT!r}"
    for v, op in enumerate(names[1:-1], start=1):
        if op not in OPS:
            return None, f"unknown op {op!r} at vertex {v} (expected one of {', '.join(OPS)})"
    pruned = _prune(tuple(tuple(int(x) for x in row) for row in rows), tuple(map(str, names)))
    if pruned is None:
        return None, "the input is not connected to the output"
    edges = sum(map(sum, pruned[0]))
    if edges > MAX_EDGES:
        return None, f"{edges} edges after pruning (expected at most {MAX_EDGES})"
    return pruned, ""


@dataclass(frozen=True)
class Cell:
    """A NAS-Bench-101 cell in pruned form: ``matrix[i][j] == 1`` is an edge from vertex i to j.

    The constructor validates and prunes, so ``Cell(matrix, ops)`` accepts any valid spec (lists,
    numpy arrays) and equal specs give equal values.
    """

    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        pruned, why = _check_spec(self.matrix, self.ops)
        if pruned is None:
            spec = _describe(self.matrix, self.ops)
            raise InvalidArchitectureError(f"nb101: invalid cell {spec}: {why}")
        matrix, ops = pruned
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "ops", ops)

    def __str__(self) -> str:
        rows = "-".join("".join(map(str, row)) for row in self.matrix)
        return f"{rows}:{','.join(self.ops)}"

    @property
    def num_vertices(self) -> int:
        return len(self.ops)

    @property
    def num_edges(self) -> int:
        return sum(map(sum, self.matrix))

    @cached_property
    def module_hash(self) -> str:
        """The benchmark's fingerprint of the cell (equal for isomorphic cells)."""
        return module_hash(self.matrix, [LABELS[op] for op in self.ops])


def make_cell(matrix: Any, ops: Sequence[str]) -> Cell:
    """Validate and prune a spec (``ModelSpec(matrix, ops)``); raise naming what is wrong."""
    return Cell(matrix, ops)


def module_hash(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """NAS-Bench-101's ``hash_module``: md5 of (out-degree, in-degree, label) per vertex, refined
    once per vertex by the sorted hashes of its in- and out-neighbours, then md5 of the sorted
    list. The exact text that is hashed matters (Python tuple and list reprs of plain ints)."""
    n = len(matrix)
    ins = [[u for u in range(n) if matrix[u][v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    hashes = [
        hashlib.md5(str((len(outs[v]), len(ins[v]), int(labels[v]))).encode("utf-8")).hexdigest() for v in range(n)
    ]
    for _ in range(n):
        hashes = [
            hashlib.md5(
                (
                    "".join(sorted(hashes[u] for u in ins[v]))
                    + "|"
                    + "".join(sorted(hashes[w] for w in outs[v]))
                    + "|"
                    + hashes[v]
                ).encode("utf-8")
            ).hexdigest()
            for v in range(n)
        ]
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def parse_cell(text: str) -> Cell:
    """Parse the canonical string (see the module docstring)."""

    def fail(why: str) -> InvalidArchitectureError:
        return InvalidArchitectureError(f"nb101: cannot parse {text!r}: {why} ({_FORMAT_HINT})")

    if not isinstance(text, str):
        raise InvalidArchitectureError(f"nb101: expected a cell string, got {text!r}")
    body = text.strip()
    if _HASH_RE.fullmatch(body):
        raise fail("this is a module hash, which names a cell only through a benchmark table")
    rows_text, sep, ops_text = body.partition(":")
    if not sep:
        raise fail("no ':' between the matrix and the ops")
    rows = rows_text.split("-")
    if any(not row or set(row) - {"0", "1"} for row in rows):
        raise fail("matrix rows must be non-empty strings of 0 and 1")
    matrix = tuple(tuple(int(c) for c in row) for row in rows)
    pruned, why = _check_spec(matrix, ops_text.split(","))
    if pruned is None:
        raise fail(why)
    return Cell(*pruned)


# -- enumeration ----------------------------------------------------------------------------------
def full_dags(n: int, max_edges: int = MAX_EDGES) -> np.ndarray:
    """Edge bitmasks of the n-vertex upper-triangular graphs with at most ``max_edges`` edges in
    which every vertex lies on an input-to-output path (so pruning leaves them unchanged).

    Bit k stands for the k-th pair (i, j), i < j, in row-major order (``EDGE_PARAMS`` order for
    n = 7).
    """
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    codes = np.arange(1 << len(pairs), dtype=np.int64)
    edges = np.zeros(len(codes), dtype=np.int64)
    for k in range(len(pairs)):
        edges += (codes >> k) & 1
    keep = edges <= max_edges
    # In a DAG, "every vertex but the input has a source and every vertex but the output has a
    # target" is the same as "every vertex is on an input-to-output path".
    for v in range(n):
        out_mask = sum(1 << k for k, (i, _) in enumerate(pairs) if i == v)
        in_mask = sum(1 << k for k, (_, j) in enumerate(pairs) if j == v)
        if v < n - 1:
            keep &= (codes & out_mask) != 0
        if v > 0:
            keep &= (codes & in_mask) != 0
    return codes[keep]


def dag_structures(n: int, max_edges: int = MAX_EDGES) -> list[tuple[tuple[int, ...], ...]]:
    """One matrix per isomorphism class of :func:`full_dags` (input and output stay fixed; the
    class representative is the member with the smallest bitmask)."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    codes = full_dags(n, max_edges)
    bits = (codes[:, None] >> np.arange(len(pairs))) & 1
    # Canonical form: the smallest n*n bitmask over all relabellings of the interior vertices.
    best = None
    for perm in itertools.permutations(range(1, n - 1)):
        p = (0, *perm, n - 1)
        weights = np.array([1 << (p[i] * n + p[j]) for i, j in pairs], dtype=np.int64)
        form = bits @ weights
        best = form if best is None else np.minimum(best, form)
    _, first = np.unique(best, return_index=True)
    return [_matrix_of(n, code) for code in sorted(int(c) for c in codes[first])]


def iter_cells() -> Iterator[Cell]:
    """Every NAS-Bench-101 cell once (one per module hash), lazily: by vertex count, then graph
    structure, then op labelling. Not an official order; a full pass takes 3-4 minutes."""
    return (cell for _, cell in iter_hashed_cells())


def iter_hashed_cells(unique: bool = True) -> Iterator[tuple[str, Cell]]:
    """``(module hash, cell)`` for every cell of :func:`iter_cells`, in its order: the hash is
    computed once (a benchmark table keyed by hash joins to the space through it).

    ``unique=False`` also yields the later labelled graphs of a hash already seen. The module
    hash is not a perfect isomorphism test: a few non-isomorphic graphs share a hash, and a
    table's recorded parameter count tells which of them the benchmark trained."""
    seen: set[str] = set()
    for n in range(2, MAX_VERTICES + 1):
        for matrix in dag_structures(n):
            for interior in itertools.product(range(len(OPS)), repeat=n - 2):
                h = module_hash(matrix, (-1, *interior, -2))
                if not unique or h not in seen:
                    seen.add(h)
                    yield h, Cell(matrix, (INPUT, *(OPS[i] for i in interior), OUTPUT))


class NB101(SearchSpace[Cell]):
    """NAS-Bench-101 (stem 128 channels, 3 stacks of 3 modules, as the benchmark trained it)."""

    name = "nb101"
    description = "NAS-Bench-101: 423,624 cells, DAGs of <= 7 vertices and <= 9 edges, 3 ops"
    # 2: initial weights drawn the same on every CPU (nas.draws; version 1 used torch's sampler)
    network_version = "2"

    def __init__(self, stem_channels: int = 128, num_stacks: int = 3, modules_per_stack: int = 3) -> None:
        self.stem_channels = stem_channels
        self.num_stacks = num_stacks
        self.modules_per_stack = modules_per_stack

    @property
    def size(self) -> int:
        return NUM_CELLS

    # -- no official order --------------------------------------------------------------------
    def from_index(self, index: int) -> Cell:
        raise InvalidArchitectureError(
            f"nb101: cannot look up index {index!r}: NAS-Bench-101 has no official index; "
            "name a cell by its spec string (see `nas.searchspaces.nb101`) or by module hash "
            "in a benchmark table"
        )

    def index_of(self, arch: Cell) -> int:
        raise InvalidArchitectureError(
            f"nb101: {arch} has no index: NAS-Bench-101 has no official index; "
            "cells are named by module hash (space.key) or by spec string"
        )

    def __iter__(self) -> Iterator[Cell]:
        """All cells once each, lazily, in this module's order (see :func:`iter_cells`)."""
        return iter_cells()

    # -- strings and keys ---------------------------------------------------------------------
    def parse(self, text: str) -> Cell:
        return parse_cell(text)

    def key(self, arch: Cell) -> str:
        """The module hash: the key of benchmark tables and score stores."""
        return arch.module_hash

    def resolve(self, ref: Any) -> Cell:
        """A :class:`Cell`, a canonical string, or a ``(matrix, ops)`` pair / ``{"matrix",
        "ops"}`` mapping as the benchmark's API spells a spec. A bare module hash is refused:
        only a benchmark table can map it to a graph."""
        if isinstance(ref, Cell):
            return ref
        if isinstance(ref, str):
            if ref.strip().isdigit():
                return self.from_index(int(ref))
            return parse_cell(ref)
        if isinstance(ref, dict) and "matrix" in ref and "ops" in ref:
            return make_cell(ref["matrix"], ref["ops"])
        if isinstance(ref, tuple) and len(ref) == 2 and not isinstance(ref[1], (str, int)):
            return make_cell(*ref)
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            return self.from_index(int(ref))
        raise InvalidArchitectureError(
            f"nb101: cannot read {ref!r} as a cell (expected a Cell, a spec string or a (matrix, ops) pair)"
        )

    def validate(self, arch: Cell) -> Cell:
        if not isinstance(arch, Cell):
            raise InvalidArchitectureError(f"nb101: expected a Cell or a spec string, got {arch!r}")
        return arch  # the constructor already validated it

    # -- sampling and neighbourhoods ------------------------------------------------------------
    def sample(self, rng: np.random.Generator) -> Cell:
        """A random cell, uniform over the 1,293,208 valid *labelled* pruned specs (every
        graph whose vertices all lie on an input-to-output path, times every op labelling).

        Not uniform over the 423,624 unique cells: a cell comes up in proportion to its number
        of labelled forms (its interior relabellings that keep the matrix upper-triangular), so
        symmetric cells are rarer. Vertex counts follow the space closely (about 90% of draws
        have 7 vertices). :func:`random_spec` is the benchmark's own sampler, which is much more
        biased towards small cells."""
        table = _labelled_specs()
        pick = np.searchsorted(table.cumulative, rng.random() * table.total, side="right")
        n, code = table.graphs[int(pick)]
        ops = [OPS[i] for i in rng.integers(0, len(OPS), size=n - 2)]
        return Cell(_matrix_of(n, int(code)), (INPUT, *ops, OUTPUT))

    def neighbours(self, arch: Cell) -> list[Cell]:
        """Cells one edge flip or one interior op change away, one per module hash, without
        ``arch``'s own hash. Moves act on the pruned graph, so a neighbour never has more
        vertices; the two-vertex cell has no neighbours."""
        m, ops = arch.matrix, arch.ops
        n = len(ops)
        seen = {arch.module_hash}
        out: list[Cell] = []

        def offer(matrix: Any, new_ops: tuple[str, ...]) -> None:
            try:
                cell = Cell(matrix, new_ops)
            except InvalidArchitectureError:
                return
            if cell.module_hash not in seen:
                seen.add(cell.module_hash)
                out.append(cell)

        for i in range(n):
            for j in range(i + 1, n):
                flipped = [list(row) for row in m]
                flipped[i][j] = 1 - flipped[i][j]
                offer(flipped, ops)
        for v in range(1, n - 1):
            for op in OPS:
                if op != ops[v]:
                    offer(m, ops[:v] + (op,) + ops[v + 1 :])
        return out

    def mutate(self, arch: Cell, rng: np.random.Generator) -> Cell:
        options = self.neighbours(arch)
        if not options:
            raise InvalidArchitectureError(f"nb101: {arch} has no neighbours to mutate to")
        return options[int(rng.integers(len(options)))]

    # -- Optuna: 21 binary edges and 5 ops over a full 7-vertex graph ----------------------------
    def suggest(self, trial: optuna.trial.BaseTrial) -> Cell:
        """Raises :class:`InvalidArchitectureError` when the drawn spec is invalid (about 27% of
        uniformly random draws): the caller decides whether that trial fails or is pruned."""
        params = {name: trial.suggest_categorical(name, (0, 1)) for name in EDGE_PARAMS}
        params.update({name: trial.suggest_categorical(name, OPS) for name in OP_PARAMS})
        return self.decode(params)

    def decode(self, params: dict[str, Any]) -> Cell:
        try:
            bits = [params[name] for name in EDGE_PARAMS]
            ops = tuple(params[name] for name in OP_PARAMS)
        except KeyError as missing:
            raise InvalidArchitectureError(f"nb101: trial params lack {missing}") from None
        return Cell(_full_matrix(bits), (INPUT, *ops, OUTPUT))

    def encode(self, arch: Cell) -> dict[str, Any]:
        """Embed the pruned cell in 7 vertices: its interior vertices come first, the unused ones
        sit just before the output with no edges (pruned away again on decode) and op
        ``conv3x3-bn-relu``."""
        n = arch.num_vertices
        # Old vertex -> position in the 7-vertex graph (the output moves to 6).
        place = list(range(n - 1)) + [MAX_VERTICES - 1]
        full = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
        for i in range(n):
            for j in range(n):
                if arch.matrix[i][j]:
                    full[place[i]][place[j]] = 1
        params: dict[str, Any] = {
            f"e{i}-{j}": full[i][j] for i in range(MAX_VERTICES) for j in range(i + 1, MAX_VERTICES)
        }
        interior = list(arch.ops[1:-1]) + [OPS[0]] * (MAX_VERTICES - n)
        params.update(zip(OP_PARAMS, interior))
        return params

    # -- network ----------------------------------------------------------------------------------
    def build(self, arch: Cell, num_classes: int = 10) -> nn.Module:
        return NB101Network(
            arch.matrix, arch.ops, num_classes, self.stem_channels, self.num_stacks, self.modules_per_stack
        )

    def num_params(self, arch: Cell, num_classes: int = 10) -> int:
        return network_params(
            arch.matrix, arch.ops, num_classes, self.stem_channels, self.num_stacks, self.modules_per_stack
        )


def random_spec(rng: np.random.Generator) -> Cell:
    """The benchmark's ``random_spec``: each of the 21 edges of a 7-vertex graph present with
    probability 1/2, interior ops uniform, redrawn until the pruned spec is valid. It is what
    NAS-Bench-101's random-search baseline used; about 10% of its draws are the two-vertex cell."""
    while True:
        bits = rng.integers(0, 2, size=len(EDGE_PARAMS))
        ops = [OPS[i] for i in rng.integers(0, len(OPS), size=MAX_VERTICES - 2)]
        pruned, _ = _check_spec(_full_matrix(bits), (INPUT, *ops, OUTPUT))
        if pruned is not None:
            return Cell(*pruned)


@dataclass(frozen=True)
class _SpecTable:
    graphs: list[tuple[int, int]]  # (vertices, edge bitmask) of every full DAG
    cumulative: np.ndarray  # running total of their labelling counts
    total: int


@lru_cache(maxsize=1)
def _labelled_specs() -> _SpecTable:
    """All 6,472 full DAGs, weighted by their 3^(n-2) labellings (built once, ~0.3 s)."""
    graphs = [(n, int(code)) for n in range(2, MAX_VERTICES + 1) for code in full_dags(n)]
    weights = np.array([len(OPS) ** (n - 2) for n, _ in graphs], dtype=np.int64)
    cumulative = np.cumsum(weights)
    return _SpecTable(graphs, cumulative, int(cumulative[-1]))


def _matrix_of(n: int, code: int) -> tuple[tuple[int, ...], ...]:
    """The n-vertex matrix of an edge bitmask (bit order of :func:`full_dags`)."""
    m = [[0] * n for _ in range(n)]
    k = 0
    for i in range(n):
        for j in range(i + 1, n):
            m[i][j] = code >> k & 1
            k += 1
    return tuple(map(tuple, m))


def _full_matrix(bits: Sequence[Any]) -> list[list[Any]]:
    """A 7x7 matrix from the 21 upper-triangle entries in ``EDGE_PARAMS`` order."""
    full: list[list[Any]] = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    k = 0
    for i in range(MAX_VERTICES):
        for j in range(i + 1, MAX_VERTICES):
            full[i][j] = bits[k]
            k += 1
    return full
