"""NAS-Bench-101 space: hashes and parameter counts against the benchmark's own records."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from nas.errors import InvalidArchitectureError
from nas.searchspaces import get_space
from nas.searchspaces.nb101 import (
    EDGE_PARAMS,
    NB101,
    NUM_CELLS,
    OP_PARAMS,
    Cell,
    make_cell,
    module_hash,
    parse_cell,
)
from nas.searchspaces.nb101_network import vertex_channels

from conftest import SHARED_DATA, require

DATA = SHARED_DATA
SUBSET = DATA / "nb101" / "nb101_subset_1000.csv"

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    """The 1,000 benchmark records, each with its cell (the padded matrix sliced to size)."""
    out = []
    with require(SUBSET).open(newline="") as f:
        for row in csv.DictReader(f):
            n = int(row["num_vertices"])
            matrix = [r[:n] for r in json.loads(row["adjacency"])[:n]]
            row["cell"] = make_cell(matrix, json.loads(row["ops"])[:n])
            out.append(row)
    assert len(out) == 1000
    return out


@pytest.fixture(scope="module")
def space() -> NB101:
    return NB101()


# -- the benchmark's records ----------------------------------------------------------------------
def test_module_hash_matches_all_recorded_hashes(rows, space):
    matches = sum(space.key(row["cell"]) == row["hash"] for row in rows)
    assert matches == len(rows)


def test_param_count_matches_all_recorded_counts(rows, space):
    wrong = [
        (str(r["cell"]), space.num_params(r["cell"]), int(r["params"]))
        for r in rows
        if space.num_params(r["cell"]) != int(r["params"])
    ]
    assert not wrong, f"{len(wrong)} mismatches, e.g. {wrong[:3]}"


def test_built_network_has_the_closed_form_count(rows, space):
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared: one thread is steadier than two
    try:
        _check_built_counts(torch, rows, space)
    finally:
        torch.set_num_threads(threads)


def _check_built_counts(torch, rows, space):
    # Ten cells spread over the parameter range (the largest 10% left out: they build slowly).
    by_size = sorted(rows, key=lambda r: int(r["params"]))
    sample = [by_size[i]["cell"] for i in np.linspace(0, 0.9 * (len(rows) - 1), 10).astype(int)]
    for cell in sample:
        net = space.build(cell)
        built = sum(p.numel() for p in net.parameters() if p.requires_grad)
        assert built == space.num_params(cell), str(cell)
    net = space.build(sample[0], num_classes=100)
    assert sum(p.numel() for p in net.parameters()) == space.num_params(sample[0], num_classes=100)
    with torch.no_grad():
        logits = net.eval()(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 100) and torch.isfinite(logits).all()


def test_canonical_string_round_trips(rows, space):
    for row in rows:
        cell = row["cell"]
        assert space.parse(space.format(cell)) == cell
        assert parse_cell(f"  {cell}\n") == cell


# -- cells, pruning and hashing -----------------------------------------------------------------------
def test_docstring_example():
    cell = parse_cell("0110-0001-0001-0000:input,conv3x3-bn-relu,maxpool3x3,output")
    assert cell.matrix == ((0, 1, 1, 0), (0, 0, 0, 1), (0, 0, 0, 1), (0, 0, 0, 0))
    assert cell.ops == ("input", C3, MP, "output")
    assert (cell.num_vertices, cell.num_edges) == (4, 4)
    assert hash(cell) == hash(parse_cell(str(cell)))


def test_pruning_removes_vertices_off_the_input_output_path():
    # Vertex 2 has no source and vertex 3 no target: both go, as ModelSpec prunes them.
    spec = np.array([[0, 1, 0, 0, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    cell = make_cell(spec, ["input", C3, C1, MP, "output"])
    assert cell == make_cell([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"])
    assert str(cell) == "011-001-000:input,conv3x3-bn-relu,output"


def test_isomorphic_cells_share_the_hash_but_not_equality():
    a = make_cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C3, MP, "output"])
    b = make_cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", MP, C3, "output"])
    assert a != b and a.module_hash == b.module_hash
    c = make_cell([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C1, C3, "output"])
    assert c.module_hash != a.module_hash
    assert module_hash(a.matrix, [-1, 0, 2, -2]) == a.module_hash


def test_vertex_channels_split_the_output_and_propagate_backwards():
    # 0->1->2->4, 0->3->4, 1->3: vertices 2 and 3 feed the output (129 = 65 + 64); 1 takes max.
    m = [[0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert vertex_channels(128, 129, m) == [128, 65, 65, 64, 129]


# -- bad input ------------------------------------------------------------------------------------
def test_malformed_string_is_named():
    for text in ("not-a-cell", "01-00:input,output,extra", "0x-00:input,output"):
        with pytest.raises(InvalidArchitectureError, match="nb101: cannot parse") as err:
            parse_cell(text)
        assert repr(text) in str(err.value)


def test_too_many_edges():
    # A 6-vertex graph with 10 edges on which every vertex is on an input-output path.
    m = [
        [0, 1, 1, 1, 0, 0],
        [0, 0, 1, 0, 1, 0],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
    ]
    ops = ["input", C3, C3, C1, MP, "output"]
    with pytest.raises(InvalidArchitectureError, match=r"10 edges after pruning \(expected at most 9\)") as err:
        make_cell(m, ops)
    assert "011100-001010-000101-000011-000001-000000" in str(err.value)
    text = "011100-001010-000101-000011-000001-000000:" + ",".join(ops)
    with pytest.raises(InvalidArchitectureError, match="10 edges") as err:
        parse_cell(text)
    assert text in str(err.value)


def test_lower_triangular_entry():
    with pytest.raises(InvalidArchitectureError, match=r"edge \(2, 1\) is on or below the diagonal") as err:
        make_cell([[0, 1, 0], [0, 0, 1], [0, 1, 0]], ["input", C3, "output"])
    assert "010-001-010:input,conv3x3-bn-relu,output" in str(err.value)


def test_disconnected_graph():
    with pytest.raises(InvalidArchitectureError, match="input is not connected to the output") as err:
        make_cell([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"])
    assert "010-000-000" in str(err.value)


def test_bad_op_name():
    with pytest.raises(InvalidArchitectureError, match=r"unknown op 'conv5x5' at vertex 1") as err:
        parse_cell("011-001-000:input,conv5x5,output")
    assert "'011-001-000:input,conv5x5,output'" in str(err.value)


@pytest.mark.parametrize(
    "matrix, ops, why",
    [
        ([[0, 1], [0, 0], [0, 0]], ["input", "output"], "not square"),
        ([[0, 2], [0, 0]], ["input", "output"], r"entry \(0, 1\) is 2"),
        ([[0, 1], [0, 0]], ["input", C3, "output"], "3 ops for 2 vertices"),
        ([[0, 1], [0, 0]], ["output", "input"], "first op must be 'input'"),
        (np.triu(np.ones((8, 8), dtype=int), 1), ["input"] + [C3] * 6 + ["output"], "8 vertices"),
        ("0110", ["input", "output"], "not a string"),
    ],
)
def test_other_bad_specs(matrix, ops, why):
    with pytest.raises(InvalidArchitectureError, match=why):
        make_cell(matrix, ops)


# -- no index, resolve ------------------------------------------------------------------------------
def test_no_official_index(space):
    cell = parse_cell("01-00:input,output")
    for call in (
        lambda: space.from_index(0),
        lambda: space.index_of(cell),
        lambda: space.resolve("12"),
        lambda: space.resolve(12),
    ):
        with pytest.raises(InvalidArchitectureError, match="no official index"):
            call()


def test_resolve(space, rows):
    cell = rows[0]["cell"]
    assert space.resolve(cell) is cell
    assert space.resolve(str(cell)) == cell
    assert space.resolve((cell.matrix, cell.ops)) == cell
    assert space.resolve({"matrix": np.array(cell.matrix), "ops": list(cell.ops)}) == cell
    with pytest.raises(InvalidArchitectureError, match="module hash") as err:
        space.resolve(rows[0]["hash"])
    assert rows[0]["hash"] in str(err.value)


def test_registry_and_size():
    space = get_space("nasbench101")
    assert isinstance(space, NB101) and len(space) == space.size == NUM_CELLS == 423_624


# -- sampling, neighbours, iteration --------------------------------------------------------------
def test_sample_is_valid_seeded_and_mostly_full_size(space):
    draws = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    cells = [space.sample(rng) for _ in range(300)]
    assert all(isinstance(c, Cell) and c.num_edges <= 9 for c in cells)
    assert sum(c.num_vertices == 7 for c in cells) > 240  # ~90% of labelled specs have 7 vertices
    assert len({c.module_hash for c in cells}) > 290


def test_neighbours_of_a_small_cell(space):
    cell = parse_cell("010-001-000:input,conv3x3-bn-relu,output")
    got = {str(c) for c in space.neighbours(cell)}
    # Dropping either edge disconnects; adding 0->2 or changing the op gives three new cells.
    assert got == {
        "011-001-000:input,conv3x3-bn-relu,output",
        "010-001-000:input,conv1x1-bn-relu,output",
        "010-001-000:input,maxpool3x3,output",
    }
    with pytest.raises(InvalidArchitectureError, match="no neighbours"):
        space.mutate(parse_cell("01-00:input,output"), np.random.default_rng(0))


def test_neighbours_are_distinct_valid_cells(space, rows):
    for row in rows[:20]:
        cell = row["cell"]
        hashes = [c.module_hash for c in space.neighbours(cell)]
        assert hashes and len(set(hashes)) == len(hashes) and cell.module_hash not in hashes
        # At most one move per edge slot plus two per interior op.
        n = cell.num_vertices
        assert len(hashes) <= n * (n - 1) // 2 + 2 * (n - 2)
    mutant = space.mutate(rows[0]["cell"], np.random.default_rng(0))
    assert mutant.module_hash != rows[0]["cell"].module_hash


def test_iteration_is_lazy_and_unique(space):
    first = []
    for cell in space:
        first.append(cell)
        if len(first) == 200:
            break
    assert str(first[0]) == "01-00:input,output"
    assert len({c.module_hash for c in first}) == 200


# -- Optuna encoding ------------------------------------------------------------------------------
def test_optuna_encoding_round_trips(space, rows):
    optuna = pytest.importorskip("optuna")
    for row in rows[:50] + [{"cell": parse_cell("01-00:input,output")}]:
        params = space.encode(row["cell"])
        assert set(params) == set(EDGE_PARAMS) | set(OP_PARAMS) and len(EDGE_PARAMS) == 21
        assert space.decode(params) == row["cell"]
        assert space.suggest(optuna.trial.FixedTrial(params)) == row["cell"]


def test_decode_rejects_invalid_specs(space):
    params = {name: 0 for name in EDGE_PARAMS} | {name: C3 for name in OP_PARAMS}
    with pytest.raises(InvalidArchitectureError, match="not connected"):
        space.decode(params)
    with pytest.raises(InvalidArchitectureError, match="lack"):
        space.decode({"e0-1": 1})


@pytest.mark.parametrize("kernel, stride, padding, ceil_mode", [(3, 1, 1, False), (2, 2, 0, True)])
def test_the_channels_last_max_pool_is_torchs_bit_for_bit(kernel, stride, padding, ceil_mode):
    """The network's pools (the 3x3 op, the 2x2 between stacks) run in channels-last memory when no
    gradient flows: the same values as torch's pool, NaNs and ties included, in the layout they
    got; with gradients they are torch's pool, gradients of both orders unchanged."""
    import torch
    import torch.nn.functional as F

    from nas.searchspaces.nb101_network import MaxPool2d

    fast = MaxPool2d(kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    gen = torch.Generator().manual_seed(0)
    shape = (4, 6, 9, 7)  # odd sizes: ceil_mode's partial windows
    inputs = {
        "post-ReLU zeros": torch.relu(torch.randn(shape, generator=gen)),
        "small integers": torch.randint(-2, 3, shape, generator=gen).float(),
        "NaNs": torch.where(torch.rand(shape, generator=gen) < 0.05, float("nan"), torch.randn(shape, generator=gen)),
    }
    for name, x in inputs.items():
        reference = F.max_pool2d(x, kernel, stride, padding, ceil_mode=ceil_mode)
        with torch.no_grad():
            ours = fast(x)
        # NaN != NaN: compare with NaNs as a number no input holds
        assert torch.equal(ours.nan_to_num(7.0), reference.nan_to_num(7.0)), name
        assert ours.is_contiguous() and fast(x.contiguous(memory_format=torch.channels_last)).is_contiguous(
            memory_format=torch.channels_last
        )
        # NLC's forward-mode products, and torch.func.vmap (which cannot tell memory formats)
        tangent = torch.randn(shape, generator=gen)
        with torch.no_grad():
            ours_jvp = torch.func.jvp(fast, (x,), (tangent,))
            torchs_jvp = torch.func.jvp(
                lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode), (x,), (tangent,)
            )
            mapped = torch.func.vmap(fast)(x.unsqueeze(1))
        assert all(torch.equal(a.nan_to_num(7.0), b.nan_to_num(7.0)) for a, b in zip(ours_jvp, torchs_jvp)), name
        assert torch.equal(mapped.squeeze(1).nan_to_num(7.0), reference.nan_to_num(7.0)), name
        # GraSP's pattern: the input's gradient depends on later weights, and is differentiated again
        weights = torch.randn(reference.shape, generator=gen)
        probe = torch.randn(shape, generator=gen)
        grads = []
        for pool in (fast, lambda t: F.max_pool2d(t, kernel, stride, padding, ceil_mode=ceil_mode)):
            leaf, later = x.clone().requires_grad_(), weights.clone().requires_grad_()
            y = pool(leaf)
            (grad,) = torch.autograd.grad((y * later).sum(), leaf, create_graph=True)
            second = torch.autograd.grad((grad * probe).sum() + (y * y).sum(), [leaf, later])
            grads.append([t.detach().nan_to_num(7.0) for t in (y, grad, *second)])
        assert all(torch.equal(a, b) for a, b in zip(*grads)), name
