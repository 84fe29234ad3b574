"""The reproduction's plan: which proxies, which cells, in which stages, scored into the store."""

from __future__ import annotations

import csv
import dataclasses
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

CHEAP = ["near", "meco", "meco_opt", "synflow", "naswot", "params", "flops"]
AZ = ["az_expressivity", "az_progressivity", "az_trainability"]
COSTLY = ["snip", "grad_norm", "jacob_cov", "fisher", "zico", "nlc", "grasp", *AZ]
ALL = CHEAP + COSTLY
# `ensemble` is the default (pre-registered in docs/proxies.md, adopted after its blind test), the
# second the former default, az_nas AZ-NAS's own aggregate.
ENSEMBLES = ["ensemble", "ensemble(near,meco_opt,zico,flops)", "ensemble(near,nlc,synflow)", "az_nas"]
# The default ensemble's components (AZ-NAS's three scores, flops, meco), which draw Gaussian
# inputs: scored again on each dataset's own network for the C100 and IN16 columns.
OWN_NETWORK = [*AZ, "flops", "meco"]
# What the own-network table reports, with the published figure (C100, IN16) beside each.
HOLDOUT = ["near", "meco", "meco_opt", "synflow", "flops", "zico", "nlc", *AZ]
TSS_DATASETS = ["cifar10", "cifar100", "imagenet16-120"]
SHORT = {"cifar10": "C10", "cifar100": "C100", "imagenet16-120": "IN16"}

# The whole-table stages (the full NATS-SSS and NAS-Bench-101 tables in the shared data): the
# proxies the issue names on every SSS cell and on the NB101 sample, most useful first.
SSS_EVERY_CHEAP = ["near", "params", "flops", "synflow", "meco_opt", "meco"]
SSS_SAMPLE = 3000  # SSS cells every other proxy scores (the head of the SSS order)
NB101_SAMPLE = 10000  # NB101 cells of the whole table, drawn with a fixed seed
NB101_SAMPLE_CHEAP = ["near", "params", "flops", "synflow", "meco_opt", "meco", "naswot"]
NB101_SAMPLE_COSTLY = ["zico", *AZ]
#: The full tables: (file under SHARED, import options); a table whose file is absent is skipped.
FULL_TABLES = {
    "nats-sss-hp90": ("nats-sss", "nats_sss/nats_sss_hp90_valid.csv.gz", {"epochs": 90}),
    "nb101-all": ("nb101", "nb101/nb101_all_test.csv.gz", {"epochs": 108}),
}

NB101_BATCH_CELLS = 200  # the first subset cells jacob_cov is also scored on with batch 256


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- stages -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class Stage:
    """Cells and proxies to score. ``network_dataset``: score each dataset's own network (its class
    count, Gaussian inputs of its image size) instead of the common protocol's; ``batch_size``: the
    common protocol's images in a batch of this size; ``max_workers``: at most this many scoring
    processes (a memory bound)."""

    name: str
    space_name: str
    archs: list[Any]
    proxies: list[str]
    network_dataset: str | None = None
    batch_size: int | None = None
    max_workers: int | None = None

    def inputs(self, common):
        """The input spec this stage scores with (``common``: the reproduction's real batch)."""
        if self.network_dataset is not None:
            return own_network_inputs(self.network_dataset)
        return common if self.batch_size is None else dataclasses.replace(common, batch_size=self.batch_size)

    def only(self, proxies: list[str]) -> Stage:
        """The same stage restricted to ``proxies``."""
        return dataclasses.replace(self, proxies=[p for p in self.proxies if p in proxies])


def own_network_inputs(dataset: str):
    """Seeded Gaussian inputs of the dataset's image size and class count, batch 64 (the inputs
    the OWN_NETWORK proxies would draw in any case; the spec sets the network's head and size)."""
    from nas.data import parse_data_arg

    return parse_data_arg("gaussian", dataset=dataset, batch_size=64, seed=0)


def reference_rows(shared: Path) -> list[dict[str, str]]:
    """The rows of ``peer_scores_nb201_500.csv``: the authors' code on the 500 reference cells."""
    with open(shared / "reference" / "peer_scores_nb201_500.csv", newline="") as f:
        return list(csv.DictReader(f))


def reference_cells(shared: Path) -> list[int]:
    return [int(row["index"]) for row in reference_rows(shared)]


def nb101_cells(table) -> list[Any]:
    from nas.benchmarks.nb101 import spec_of_row
    from nas.searchspaces import get_space

    space = get_space("nb101")
    return [space.resolve(spec_of_row(table.extras, row)) for row in range(len(table))]


def holdout_cells(tss, sample: list[Any], count: int = 500) -> list[Any]:
    """``count`` NATS-TSS cells outside the 1,000-cell sample (in the order of
    ``numpy.random.default_rng(1).permutation(15625)``): no ensemble was chosen with them in view,
    so they are the blind test of a pre-registered ensemble."""
    seen = {tss.key(a) for a in sample}
    out = []
    for index in np.random.default_rng(1).permutation(tss.size):
        arch = tss.from_index(int(index))
        if tss.key(arch) not in seen:
            out.append(arch)
            if len(out) == count:
                break
    return out


def drawn_subset(order: list[str], drawn: set[str], scored: Iterable[str]) -> list[str]:
    """The cells of ``scored`` that label-blind draws put there, in ``order``'s order: the longest
    fully scored head of ``order`` (a stage's seeded random order) and the cells of ``drawn`` (the
    seeded random cell sets). Cells scored for any other reason (say, a user's own picks in the
    same store) are left out, so the subset is a random one whatever else the store holds."""
    scored = set(scored)
    head = 0
    while head < len(order) and order[head] in scored:
        head += 1
    return [key for i, key in enumerate(order) if key in scored and (i < head or key in drawn)]


def scoring_order(tss, unique: list[Any]) -> list[Any]:
    """Every NATS-TSS cell, in the order the whole-space stages score them: the unique cells first
    (VKDNW's cell set, so a run cut short completes that comparison before anything else), then
    the others; each group in the order of ``numpy.random.default_rng(2).permutation``, so what a
    cut-short run has scored of a group is a random subset of it, not a run of neighbouring
    indices."""
    rng = np.random.default_rng(2)
    unique_keys = {tss.key(a) for a in unique}
    others = [a for a in tss if tss.key(a) not in unique_keys]
    return [group[i] for group in (unique, others) for i in rng.permutation(len(group))]


def stages(shared: Path, tables: dict[str, Any]) -> list[Stage]:
    from nas.scoring import select_archs
    from nas.searchspaces import get_space

    tss, sss = get_space("nats-tss"), get_space("nats-sss")
    ref = [tss.from_index(i) for i in reference_cells(shared)]
    sample = select_archs(tss, 1000, 0)
    nb101 = nb101_cells(tables["nb101"])
    fixtures = [sss.resolve(k) for k in tables["nats-sss"].keys]
    holdout = holdout_cells(tss, sample)
    from nas.correlation import unique_representatives

    unique = unique_representatives(tss, "pruned")
    every = scoring_order(tss, unique)
    return [
        *core_stages(ref, sample, fixtures, holdout, unique, every, nb101),
        *full_table_stages(tables),
    ]


def sss_order(sss) -> list[Any]:
    """Every NATS-SSS cell in the order of ``numpy.random.default_rng(3).permutation(32768)``: what
    a run cut short has scored is a random subset, and its first 3,000 are the sample of the
    costly proxies."""
    return [sss.from_index(int(i)) for i in np.random.default_rng(3).permutation(sss.size)]


def nb101_sample(table, count: int = NB101_SAMPLE) -> list[Any]:
    """``count`` cells of the whole NB101 table: rows ``numpy.random.default_rng(4).choice(rows,
    count, replace=False)`` of the imported table (rows in the file's order, by module hash), each
    built with the vertex order the import chose (the one with the recorded parameter count)."""
    from nas.benchmarks.nb101 import spec_of_row
    from nas.searchspaces import get_space

    space = get_space("nb101")
    rows = np.random.default_rng(4).choice(len(table), min(count, len(table)), replace=False)
    return [space.resolve(spec_of_row(table.extras, int(r))) for r in rows]


def full_table_stages(tables: dict[str, Any]) -> list[Stage]:
    """The stages of the full NATS-SSS and NB101 tables (none for a table that is not there)."""
    from nas.searchspaces import get_space

    out = []
    if "nats-sss-hp90" in tables:
        every = sss_order(get_space("nats-sss"))
        rest = [p for p in ALL if p not in SSS_EVERY_CHEAP + AZ]
        out += [
            Stage("sss-all-cheap", "nats-sss", every, SSS_EVERY_CHEAP),
            Stage("sss-sample-costly", "nats-sss", every[:SSS_SAMPLE], rest),
            Stage("sss-all-az", "nats-sss", every, AZ),
        ]
    if "nb101-all" in tables:
        drawn = nb101_sample(tables["nb101-all"])
        out += [
            Stage("nb101-sample-cheap", "nb101", drawn, NB101_SAMPLE_CHEAP),
            Stage("nb101-sample-costly", "nb101", drawn, NB101_SAMPLE_COSTLY),
        ]
    return out


def core_stages(ref, sample, fixtures, holdout, unique, every, nb101) -> list[Stage]:
    """The NATS-TSS, NB101-subset and SSS-fixture stages (docstring of :mod:`nas.reproduce`)."""
    return [
        Stage("tss-ref500", "nats-tss", ref, ALL),
        Stage("tss-sample1000", "nats-tss", sample, ALL),
        Stage("sss-fixtures", "nats-sss", fixtures, ALL),
        Stage("tss-holdout", "nats-tss", holdout, HOLDOUT),
        Stage("tss-unique", "nats-tss", every[: len(unique)], ALL),
        Stage("tss-unique-c100-network", "nats-tss", every[: len(unique)], OWN_NETWORK, "cifar100"),
        Stage("tss-unique-in16-network", "nats-tss", every[: len(unique)], OWN_NETWORK, "imagenet16-120"),
        Stage("tss-all-cheap", "nats-tss", every, CHEAP),
        Stage("nb101-cheap", "nb101", nb101, CHEAP),
        Stage("tss-all-costly", "nats-tss", every, COSTLY),
        Stage("nb101-costly", "nb101", nb101, COSTLY),
        # The Zero-Cost Proxies script scores NB101 with batch 256 (``nasbench1_pred.py``), ours 64:
        # does the batch explain jacob_cov's gap to the notebook's figure? One process: the largest
        # cells keep ~14 GB of activations for the input gradient of 256 images.
        Stage(
            "nb101-jacob-cov-batch256", "nb101", nb101[:NB101_BATCH_CELLS], ["jacob_cov"], batch_size=256, max_workers=1
        ),
    ]


def import_tables(shared: Path, home: Path) -> dict[str, Any]:
    """The benchmark tables of the reproduction (imported once into ``home``)."""
    from nas.benchmarks import BenchmarkTable, import_benchmark

    sources = {
        "nats-tss": (shared / "nb201" / "nb201_accuracies.csv", {"epochs": 200}),
        "nb101": (shared / "nb101" / "nb101_subset_1000.csv", {}),
        "nats-sss": (shared / "nats" / "NATS-sss-v1_0-50262-simple", {}),
    }
    tables = {}
    for space, (source, options) in sources.items():
        path = home / f"{space}.h5"
        if not path.is_file():
            log(f"importing {source} -> {path}")
            import_benchmark(space, str(source), out=path, **options)
        tables[space] = BenchmarkTable(path)
    for name, (space, relative, options) in FULL_TABLES.items():
        source, path = shared / relative, home / f"{name}.h5"
        if not path.is_file():
            if not source.is_file():
                log(f"{source} is missing: its stages are skipped")
                continue
            took = "a few minutes" if space == "nb101" else "seconds"  # 423,624 NB101 rows, 32,768 SSS
            log(f"importing {source} -> {path} (once; {took})")
            import_benchmark(space, str(source), out=path, **options)
        tables[name] = BenchmarkTable(path)
    return tables


def stage_scorer(stage: Stage, inputs):
    """The scorer of a stage: its proxies on its space, with its inputs, networks seeded with 0."""
    from nas.proxies import get_proxy
    from nas.scoring import Scorer
    from nas.searchspaces import get_space

    return Scorer(get_space(stage.space_name), [get_proxy(p) for p in stage.proxies], stage.inputs(inputs), seed=0)


def score_stages(
    todo: list[Stage], inputs, store, workers: int, deadline: float | None, cluster: str | None = None
) -> None:
    from nas.scoring import score_many

    for stage in todo:
        if deadline is not None and time.monotonic() > deadline:
            log(f"time is up before stage {stage.name}; rerun to go on")
            return
        scorer = stage_scorer(stage, inputs)
        space = scorer.space
        keys = [space.key(a) for a in stage.archs]
        missing = sum(len(store.missing(space.name, keys, scorer.digest(p))) for p in scorer.proxies)
        log(
            f"stage {stage.name}: {len(stage.archs):,} cells x {len(stage.proxies)} proxies, {missing:,} scores missing"
        )
        if missing:
            score_many(
                scorer,
                stage.archs,
                store,
                workers=min(workers, stage.max_workers or workers),
                progress=True,
                deadline=deadline,
                cluster=None if stage.max_workers == 1 else cluster,  # a one-process stage stays local
            )


# -- what is left, and what it will cost -------------------------------------------------------------
def seconds_per_score(groups, proxy: str, digest: str) -> tuple[float | None, bool]:
    """The mean stored seconds of ``digest``'s scores (:meth:`ScoreStore.group_counts` rows of its
    space), and True; failing that, of every stored score of ``proxy`` in that space (another
    protocol of it: another version, batch or network; a rougher guess), and False; None if none."""
    from nas.store import mean_seconds

    for exact in (True, False):
        mean = mean_seconds(g for g in groups if (g.protocol == digest if exact else g.proxy == proxy))
        if mean is not None:
            return mean, exact
    return None, False


def projection(todo: list[Stage], inputs, store, workers: int) -> list[str]:
    """A markdown table of the scores each stage still misses, per proxy, with the core-hours
    they will take at the mean seconds the store records for that protocol (``~``: for another
    protocol of the proxy), and the total in wall-hours on ``workers`` processes. The proxies'
    own time only (a network's build is not stored), measured on whichever machines scored."""
    lines = ["| stage | proxy | scores missing | s/score | core-hours |", "|---|---|---|---|---|"]
    groups: dict[str, list] = {}
    core_hours, missing_total, unknown = 0.0, 0, []
    for stage in todo:
        scorer = stage_scorer(stage, inputs)
        space = scorer.space
        if space.name not in groups:
            groups[space.name] = store.group_counts(space.name)
        keys = [space.key(a) for a in stage.archs]
        for proxy in scorer.proxies:
            digest = scorer.digest(proxy)
            missing = len(store.missing(space.name, keys, digest))
            if not missing:
                continue
            missing_total += missing
            per_score, exact = seconds_per_score(groups[space.name], proxy.label(), digest)
            if per_score is None:
                unknown.append(f"{stage.name} {proxy.label()}")
                lines.append(f"| {stage.name} | {proxy.label()} | {missing:,} | ? | ? |")
                continue
            hours = missing * per_score / 3600
            core_hours += hours
            mark = "" if exact else "~"
            lines.append(f"| {stage.name} | {proxy.label()} | {missing:,} | {mark}{per_score:.2f} | {hours:.1f} |")
    if not missing_total:
        return ["every score of these stages is stored"]
    total = (
        f"{missing_total:,} scores missing: about {core_hours:.1f} core-hours, "
        f"{core_hours / max(workers, 1):.1f} wall-hours on {workers} worker(s)"
    )
    if unknown:
        total += f"; not counted, never timed here: {', '.join(unknown)}"
    return [*lines, "", total]
