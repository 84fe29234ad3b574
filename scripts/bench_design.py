"""The design-tool experiments of docs/design.md: are the papers' design claims true here?

Stages (each resumable: every finished training is a line of OUT/<stage>.jsonl; rerun to go on):

- ``nlc``: does the NLC at initialisation predict the trained test error? ``--archs`` random
  networks (the generator below: MLP or CNN, depth, width, activation, BatchNorm, skip connections,
  initialisation), each trained with the fixed recipe on ``--seeds`` seeds.
- ``normalize``: networks of the ``nlc`` stage whose NLC lies above the band, normalised to the
  registered target, trained with the same seeds (the same weights and data order); the control:
  in-band networks softened the same way.
- ``width``: NEAR's layer-size estimate against a width sweep trained to convergence, on MLP
  settings.
- ``activation``: NEAR's ranking of activation x initialisation pairs against trained accuracy.

Data: the shared CIFAR-10 images, training split (5,085 images) to train and to measure the
NLC / NEAR, test batch (1,017 images) to evaluate: never the same images.

Recipe (every network, every stage): Adam, lr 1e-3 with a cosine schedule to 0, batch 128,
``--epochs`` epochs (default 15), no weight decay, no augmentation, cross-entropy; one torch
thread per job. The test error is that of the last epoch.

    python scripts/bench_design.py --shared ../shared/data --out bench_design --stages nlc --jobs 2
    python scripts/bench_design.py --shared ../shared/data --out bench_design --summary-only
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import numpy as np

STAGES = ("nlc", "nlc-wide", "chaotic", "normalize", "width", "activation")
#: The stages whose trainings are original networks (experiment 1's points).
ORIGINALS = ("nlc", "nlc-wide", "chaotic")
#: Registered before measuring (docs/design.md): the band's geometric centre, and the normalisation targets.
NLC_STAR = math.sqrt(3.0)
NORMALIZE_TARGET = 2.0
CONTROL_FACTOR = 0.75  # in-band networks are softened to 0.75 x their NLC (staying >= 1.1)
BAND = (1.0, 3.0)
#: The random architecture generator (stage nlc).
ACTS = ("relu", "tanh", "gelu", "selu", "sigmoid", "leaky_relu", "softplus", "elu")
INIT_CHOICES = ("default", "kaiming_normal", "xavier_normal", "orthogonal")
WIDTH_SETTINGS = {  # name: (model with W at the swept layer, swept layer)
    "mlp1-relu": ("mlp(widths=W,act=relu)", 0),
    "mlp2-relu": ("mlp(widths=W-256,act=relu)", 0),
    "mlp1-tanh": ("mlp(widths=W,act=tanh)", 0),
}
SWEEP = (16, 32, 64, 128, 256, 512, 1024)
ACT_SETTINGS = {"mlp2": "mlp(widths=256-256)", "cnn": "cnn(channels=16-32-64,blocks=1)"}
ACT_PAIRS = (("relu", "tanh", "gelu", "sigmoid"), ("default", "xavier_normal", "kaiming_normal"))


def random_architecture(rng: np.random.Generator) -> str:
    """One draw of the stage-``nlc`` generator (a model spec of nas.design.models)."""
    act = ACTS[rng.integers(len(ACTS))]
    init = INIT_CHOICES[rng.integers(len(INIT_CHOICES))]
    bn = bool(rng.integers(2))
    skip = bool(rng.integers(2))
    if rng.random() < 0.5:
        depth = int(rng.choice([1, 2, 3, 4, 6, 8]))
        width = int(rng.choice([64, 128, 256, 512]))
        widths = "-".join([str(width)] * depth)
        return f"mlp(widths={widths},act={act},bn={str(bn).lower()},skip={str(skip).lower()},init={init})"
    base = int(rng.choice([8, 16]))
    blocks = int(rng.choice([1, 2, 3]))
    channels = f"{base}-{2 * base}-{4 * base}"
    return (
        f"cnn(channels={channels},blocks={blocks},act={act},bn={str(bn).lower()},skip={str(skip).lower()},init={init})"
    )


def wide_architecture(rng: np.random.Generator) -> str:
    """One draw of the ``nlc-wide`` generator (amendment of experiment 1): deeper networks and a
    weight scale ``gain``, so that the NLC range is wider than generator A's (1 to 3 on these images)."""
    act = ACTS[rng.integers(len(ACTS))]
    init = ("kaiming_normal", "orthogonal", "xavier_normal")[rng.integers(3)]
    gain = float(rng.choice([1.0, 1.5, 2.0, 3.0, 4.0]))
    flags = f"bn={str(bool(rng.integers(2))).lower()},skip={str(bool(rng.integers(2))).lower()}"
    if rng.random() < 0.5:
        widths = "-".join([str(int(rng.choice([128, 256, 512])))] * int(rng.choice([4, 6, 8, 12])))
        return f"mlp(widths={widths},act={act},{flags},init={init},gain={gain:g})"
    base = int(rng.choice([8, 16]))
    blocks = int(rng.choice([2, 3]))
    return f"cnn(channels={base}-{2 * base}-{4 * base},blocks={blocks},act={act},{flags},init={init},gain={gain:g})"


def chaotic_architecture(rng: np.random.Generator) -> str:
    """One draw of the ``chaotic`` generator (experiment 2's networks above the band): no
    BatchNorm, no skip connections, large weight scales; kept only if NLC > 3 at initialisation."""
    act = ("tanh", "selu", "gelu", "elu", "relu", "softplus")[rng.integers(6)]
    init = ("kaiming_normal", "orthogonal")[rng.integers(2)]
    gain = float(rng.choice([2.0, 3.0, 4.0, 6.0]))
    if rng.random() < 0.5:
        widths = "-".join([str(int(rng.choice([128, 256, 512])))] * int(rng.choice([4, 6, 8])))
        return f"mlp(widths={widths},act={act},bn=false,skip=false,init={init},gain={gain:g})"
    base = int(rng.choice([8, 16]))
    blocks = int(rng.choice([2, 3]))
    plain = f"bn=false,skip=false,init={init},gain={gain:g}"
    return f"cnn(channels={base}-{2 * base}-{4 * base},blocks={blocks},act={act},{plain})"


def chaotic_set(train, wanted: int = 20, tries: int = 200) -> list[str]:
    """The first ``wanted`` draws of :func:`chaotic_architecture` (seed 2028) whose NLC at
    initialisation (seed 0, the 256 probe images) is above the band."""
    from nas.design import network_nlc, parse_model

    rng = np.random.default_rng(2028)
    probe = _probe(train)
    chosen: list[str] = []
    for _ in range(tries):
        spec = chaotic_architecture(rng)
        if spec not in chosen and network_nlc(parse_model(spec).build((3, 32, 32), 10, seed=0), probe) > BAND[1]:
            chosen.append(spec)
        if len(chosen) == wanted:
            break
    return chosen


def data_dir(args) -> str:
    return str(Path(args.shared) / "cifar10" / "cifar-10-batches-py")


# -- training ------------------------------------------------------------------------------------------
def train_and_test(model, train, test, epochs: int, seed: int, batch_size: int = 128) -> dict:
    """The fixed recipe; returns the final train loss/accuracy and the test error (%)."""
    import torch
    import torch.nn.functional as F

    (x, y), (xt, yt) = train, test
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * math.ceil(len(x) / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    history = []
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = correct = 0
        loss_sum = 0.0
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            if len(idx) < 2:
                continue
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
            total += len(idx)
        history.append(loss_sum / total)
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(xt[i : i + 500]).argmax(1) for i in range(0, len(xt), 500)])
    test_error = 100.0 * float((predicted != yt).float().mean())
    finite = all(math.isfinite(v) for v in history)
    return {
        "train_loss": history[-1] if finite else None,
        "train_acc": 100.0 * correct / max(total, 1),
        "test_error": test_error,
        "loss_curve": history,
        "diverged": not finite,
    }


def _images(args):
    from nas.data import load_images

    train = load_images("cifar10", data_dir(args), "train")
    test = load_images("cifar10", data_dir(args), "test")
    return train, test


def _probe(train, n: int = 256, seed: int = 0):
    import torch

    pick = torch.randperm(len(train[0]), generator=torch.Generator().manual_seed(seed))[:n]
    return train[0][pick]


def run_job(job: dict) -> dict:
    """One training (and the zero-shot measurement of that network), by stage."""
    import torch

    from nas.design import network_nlc, normalize_nonlinearity, parse_model

    torch.set_num_threads(1)
    args = argparse.Namespace(**job["args"])
    train, test = _images(args)
    probe = _probe(train)
    spec = parse_model(job["model"])
    model = spec.build((3, 32, 32), 10, seed=job["seed"])
    out = dict(job)
    out.pop("args")
    started = time.perf_counter()
    if job.get("normalize"):
        target = job["normalize"]
        try:
            model, result = normalize_nonlinearity(model, probe, target=target, pairs=256)
        except Exception as err:  # unreachable target: recorded, not trained
            out.update(error=f"{type(err).__name__}: {err}")
            return out
        out["alphas"] = result.alphas
    out["nlc"] = network_nlc(model, probe, pairs=256)
    out.update(train_and_test(model, train, test, args.epochs, job["seed"]))
    out["seconds"] = time.perf_counter() - started
    out["params"] = sum(p.numel() for p in model.parameters())
    return out


# -- job lists -------------------------------------------------------------------------------------------
def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def originals(out: Path) -> dict[str, list[dict]]:
    """Every trained original network (the stages of :data:`ORIGINALS`), by model: its seeds' rows."""
    by_model: dict[str, list[dict]] = {}
    for stage in ORIGINALS:
        for r in read_log(out / f"{stage}.jsonl"):
            if r.get("test_error") is not None:
                by_model.setdefault(r["model"], []).append(r)
    return by_model


def normalize_target(rows: list[dict]) -> float | None:
    """Experiment 2's target for a network from its trained originals (median NLC over seeds):
    NORMALIZE_TARGET above the band, CONTROL_FACTOR x its NLC (at least 1.1) in [1.5, 3], else
    None. Rows normalised to another target (one computed before every seed had trained) are
    not the registered experiment's and are left out of the summary."""
    nlc = float(np.median([r["nlc"] for r in rows]))
    if nlc > BAND[1]:
        return NORMALIZE_TARGET
    if 1.5 <= nlc <= BAND[1]:
        return max(1.1, CONTROL_FACTOR * nlc)
    return None


def key(job: dict) -> str:
    return json.dumps({k: job.get(k) for k in ("stage", "model", "seed", "normalize")}, sort_keys=True)


def jobs_for(stage: str, args, out: Path) -> list[dict]:
    raw = vars(args)
    if stage == "nlc":
        rng = np.random.default_rng(2026)
        models = [random_architecture(rng) for _ in range(args.archs)]
        return [{"stage": stage, "model": m, "seed": s, "args": raw} for s in range(args.seeds) for m in models]
    if stage == "nlc-wide":
        rng = np.random.default_rng(2027)
        models = [wide_architecture(rng) for _ in range(args.wide_archs)]
        return [{"stage": stage, "model": m, "seed": s, "args": raw} for s in range(args.seeds) for m in models]
    if stage == "chaotic":
        import torch

        torch.set_num_threads(1)
        models = chaotic_set(_images(args)[0], args.chaotic_archs)
        return [{"stage": stage, "model": m, "seed": s, "args": raw} for s in range(args.seeds) for m in models]
    if stage == "normalize":
        jobs = []
        for model, rows in originals(out).items():
            target = normalize_target(rows)
            if target is None:
                continue
            jobs += [
                {"stage": stage, "model": model, "seed": r["seed"], "normalize": target, "args": raw} for r in rows
            ]
        return jobs
    if stage == "width":
        near = near_estimates(args, out)
        jobs = []
        for name, (pattern, _) in WIDTH_SETTINGS.items():
            estimate = near[f"width:{name}"]["size"]
            widths = [*SWEEP, *([round(estimate)] if 1 <= estimate <= 4096 else [])]
            jobs += [
                {"stage": stage, "setting": name, "model": pattern.replace("W", str(w)), "width": w, "seed": s,
                 "args": raw}
                for w in widths
                for s in range(args.seeds)
            ]  # fmt: skip
        return jobs
    if stage == "activation":
        from nas.design import parse_model

        near_estimates(args, out)
        return [
            {
                "stage": stage,
                "setting": name,
                "model": parse_model(spec).with_params(act=a, init=i).text,
                "act": a,
                "init": i,
                "seed": s,
                "args": raw,
            }
            for name, spec in ACT_SETTINGS.items()
            for a in ACT_PAIRS[0]
            for i in ACT_PAIRS[1]
            for s in range(args.seeds)
        ]
    raise ValueError(stage)


def run_stage(stage: str, args, out: Path) -> None:
    log = out / f"{stage}.jsonl"
    finished = {key(r) for r in read_log(log)}
    todo = [j for j in jobs_for(stage, args, out) if key(j) not in finished]
    deadline = None if args.minutes is None else time.monotonic() + 60 * args.minutes
    print(f"{stage}: {len(todo)} trainings to run ({len(finished)} done)", file=sys.stderr, flush=True)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        pending: dict = {}
        while todo or pending:
            while todo and len(pending) < args.jobs and (deadline is None or time.monotonic() < deadline):
                job = todo.pop(0)
                pending[pool.submit(run_job, job)] = job
            if not pending:
                break
            done = next(as_completed(pending))
            pending.pop(done)
            result = done.result()
            with open(log, "a") as f:
                f.write(json.dumps(result) + "\n")
            print(
                f"{stage}: {result['model']} seed {result['seed']}: error {result.get('test_error', '-')}, "
                f"NLC {result.get('nlc', float('nan')):.3g} ({result.get('seconds', 0):.0f} s)",
                file=sys.stderr,
                flush=True,
            )


# -- the NEAR side (zero-shot, no training) ----------------------------------------------------------------
def near_estimates(args, out: Path) -> dict:
    """NEAR's width estimate per width setting and its ranking per activation setting (cached)."""
    path = out / "near.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    import torch

    from nas.design import model_layer_size, parse_model, rank_model_activations

    torch.set_num_threads(args.jobs)
    train, _ = _images(args)
    for name, (pattern, layer) in WIDTH_SETTINGS.items():
        if f"width:{name}" in cached:
            continue
        x = _probe(train, 1280, seed=0)
        est = model_layer_size(parse_model(pattern.replace("W", "64")), layer, x, 10)
        cached[f"width:{name}"] = {"size": est.size, "a": est.a, "b": est.b, "c": est.c, "sizes": est.sizes,
                                   "relative": est.relative_scores}  # fmt: skip
        path.write_text(json.dumps(cached, indent=1))
    for name, spec in ACT_SETTINGS.items():
        if f"activation:{name}" in cached:
            continue
        ranking = rank_model_activations(parse_model(spec), _probe(train, 256), 10, *ACT_PAIRS, repetitions=3)
        cached[f"activation:{name}"] = [{"act": r.activation, "init": r.init, "near": r.score} for r in ranking]
        path.write_text(json.dumps(cached, indent=1))
    return cached


# -- the summary ----------------------------------------------------------------------------------------------
def nlc_figures(by_model: dict[str, list[dict]], kendall_tau, bootstrap_tau_ci) -> dict:
    """Experiment 1's statistics over the trained original networks (mean error over seeds,
    median NLC over seeds)."""
    models = sorted(by_model)
    nlc = np.array([np.median([r["nlc"] for r in by_model[m]]) for m in models])
    err = np.array([np.mean([r["test_error"] for r in by_model[m]]) for m in models])
    ok = np.isfinite(nlc) & np.isfinite(err) & (nlc > 0)
    distance = np.abs(np.log(np.where(nlc > 0, nlc, 1.0)) - math.log(NLC_STAR))
    bins = [(0, 1.5), (1.5, 3), (3, 10), (10, math.inf)]

    def band(lo: float, hi: float) -> dict:
        inside = ok & (nlc >= lo) & (nlc < hi)
        return {"nlc": f"{lo:g}-{hi:g}", "n": int(inside.sum()),
                "median_error": float(np.median(err[inside])) if inside.any() else None}  # fmt: skip

    return {
        "architectures": int(ok.sum()),
        "trainings": sum(len(v) for v in by_model.values()),
        "tau_distance_vs_error": kendall_tau(distance[ok], err[ok]),
        "tau_distance_ci": bootstrap_tau_ci(distance[ok], err[ok], 1000, 0),
        "tau_nlc_vs_error": kendall_tau(nlc[ok], err[ok]),
        "tau_nlc_ci": bootstrap_tau_ci(nlc[ok], err[ok], 1000, 0),
        "by_nlc": [band(lo, hi) for lo, hi in bins],
        "points": [
            {"model": m, "stage": by_model[m][0]["stage"], "nlc": float(a), "error": float(b)}
            for m, a, b in zip(models, nlc, err)
        ],
    }


def summary(args, out: Path) -> dict:
    from nas.stats import bootstrap_tau_ci, kendall_tau

    result: dict = {"protocol": {k: v for k, v in vars(args).items() if k != "summary_only"}}
    every = originals(out)
    registered = {m: rs for m, rs in every.items() if rs[0]["stage"] == "nlc"}
    for name, by_model in (("nlc", registered), ("nlc_pooled", every)):
        if by_model:
            result[name] = nlc_figures(by_model, kendall_tau, bootstrap_tau_ci)
    logged = read_log(out / "normalize.jsonl")
    registered_norm = [
        r for r in logged if r["model"] in every and r["normalize"] == normalize_target(every[r["model"]])
    ]
    norm = [r for r in registered_norm if r.get("test_error") is not None]
    result["normalize_runs"] = {
        "logged": len(logged),
        "registered": len(registered_norm),
        "failed": [r["error"] for r in registered_norm if r.get("error")],
        "largest_miss": max((abs(r["nlc"] / r["normalize"] - 1) for r in norm), default=None),
    }
    base = {(r["model"], r["seed"]): r for rs in every.values() for r in rs}
    if norm:
        for group, test in (("above band", lambda n: n > BAND[1]), ("control (in band)", lambda n: n <= BAND[1])):
            pairs = [
                (base[(r["model"], r["seed"])]["test_error"], r["test_error"], r["model"])
                for r in norm
                if (r["model"], r["seed"]) in base and test(float(np.median([o["nlc"] for o in every[r["model"]]])))
            ]
            if not pairs:
                continue
            diffs = np.array([b - a for a, b, _ in pairs])  # normalised minus original: < 0 helps
            rng = np.random.default_rng(0)
            boots = [rng.choice(diffs, len(diffs)).mean() for _ in range(2000)]
            # Beside the registered interval (pairs resampled), one that resamples networks: the two
            # seeds of a network are not independent.
            per_net: dict[str, list[float]] = {}
            for (_, _, model), d in zip(pairs, diffs):
                per_net.setdefault(model, []).append(float(d))
            sums = np.array([sum(v) for v in per_net.values()])
            counts = np.array([len(v) for v in per_net.values()])
            picks = (rng.integers(0, len(sums), len(sums)) for _ in range(2000))
            net_boots = [sums[i].sum() / counts[i].sum() for i in picks]
            result.setdefault("normalize", {})[group] = {
                "pairs": len(diffs),
                "mean_difference": float(diffs.mean()),
                "ci": [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))],
                "helped": int((diffs < 0).sum()),
                "networks": len(per_net),
                "networks_helped": int(sum(np.mean(v) < 0 for v in per_net.values())),
                "ci_by_network": [float(np.percentile(net_boots, 2.5)), float(np.percentile(net_boots, 97.5))],
            }
    widths = [r for r in read_log(out / "width.jsonl") if r.get("test_error") is not None]
    near_path = out / "near.json"
    near = json.loads(near_path.read_text()) if near_path.exists() else {}
    for name in WIDTH_SETTINGS:
        rows_w = [r for r in widths if r["setting"] == name]
        estimate = near.get(f"width:{name}", {}).get("size")
        if not rows_w or estimate is None:
            continue
        by_width: dict[int, list[dict]] = {}
        for r in rows_w:
            by_width.setdefault(int(r["width"]), []).append(r)
        acc = {w: 100.0 - float(np.mean([r["test_error"] for r in rs])) for w, rs in by_width.items()}
        params = {w: rs[0]["params"] for w, rs in by_width.items()}
        swept = [w for w in acc if w in SWEEP]
        best = max(swept, key=lambda w: acc[w])
        chosen = round(estimate) if round(estimate) in acc else None
        entry = {
            "estimate": estimate,
            "accuracy_by_width": {str(w): acc[w] for w in sorted(acc)},
            "best_swept_width": best,
            "best_accuracy": acc[best],
        }
        if chosen is not None:
            entry.update(
                estimated_width_accuracy=acc[chosen],
                accuracy_ratio=acc[chosen] / acc[best],
                params_ratio=params[chosen] / params[best],
                passes=acc[chosen] >= 0.98 * acc[best] and params[chosen] <= 0.5 * params[best],
            )
        result.setdefault("width", {})[name] = entry
    acts = [r for r in read_log(out / "activation.jsonl") if r.get("test_error") is not None]
    for name in ACT_SETTINGS:
        ranking = near.get(f"activation:{name}")
        rows_a = [r for r in acts if r["setting"] == name]
        if not ranking or not rows_a:
            continue
        trained: dict[tuple[str, str], list[float]] = {}
        for r in rows_a:
            trained.setdefault((r["act"], r["init"]), []).append(100.0 - r["test_error"])
        pairs = [
            (p["near"], float(np.mean(trained[(p["act"], p["init"])])))
            for p in ranking
            if (p["act"], p["init"]) in trained
        ]
        if len(pairs) < 3:
            continue
        scores, accs = np.array(pairs).T
        top = ranking[0]
        best_acc = float(accs.max())
        top_acc = float(np.mean(trained.get((top["act"], top["init"]), [math.nan])))
        result.setdefault("activation", {})[name] = {
            "pairs": len(pairs),
            "tau": kendall_tau(scores, accs),
            "near_top": f"{top['act']}+{top['init']}",
            "near_top_accuracy": top_acc,
            "best_accuracy": best_acc,
            "top_within_1_point": best_acc - top_acc <= 1.0,
            "table": [{"act": p["act"], "init": p["init"], "near": p["near"],
                       "accuracy": float(np.mean(trained[(p["act"], p["init"])]))}
                      for p in ranking if (p["act"], p["init"]) in trained],
        }  # fmt: skip
    return result


def plot_nlc(figures: dict, path: Path) -> None:
    """Test error against the NLC at initialisation (experiment 1), the band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = figures["points"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvspan(*BAND, color="tab:green", alpha=0.12, label="band 1-3")
    for family, marker in (("mlp", "o"), ("cnn", "s")):
        pts = [p for p in points if p["model"].startswith(family)]
        ax.scatter([p["nlc"] for p in pts], [p["error"] for p in pts], marker=marker, label=family, alpha=0.7)
    ax.set_xscale("log")
    ax.set_xlabel("NLC at initialisation (256 training images)")
    ax.set_ylabel("test error after training (%)")
    ax.set_title(f"{len(points)} random architectures, CIFAR-10 (5,085 training images)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--shared", required=True, help="the shared data folder (cifar10/)")
    p.add_argument("--out", default="bench_design", help="results go here")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages (default all, in order)")
    p.add_argument("--archs", type=int, default=60, help="random architectures of the nlc stage (default 60)")
    p.add_argument("--wide-archs", type=int, default=40, help="architectures of the nlc-wide stage (default 40)")
    p.add_argument("--chaotic-archs", type=int, default=20, help="networks above the band, chaotic stage (default 20)")
    p.add_argument("--seeds", type=int, default=2, help="training seeds per network (default 2)")
    p.add_argument("--epochs", type=int, default=15, help="training epochs of the fixed recipe (default 15)")
    p.add_argument("--jobs", type=int, default=2, help="trainings at once, one torch thread each")
    p.add_argument("--minutes", type=float, default=None, help="start no new training after this long")
    p.add_argument("--summary-only", action="store_true")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        p.error(f"unknown stage(s) {unknown}; expected {list(STAGES)}")
    if not args.summary_only:
        for stage in stages:
            run_stage(stage, args, out)
    result = summary(args, out)
    (out / "summary.json").write_text(json.dumps(result, indent=1, default=float))
    if "nlc_pooled" in result:
        plot_nlc(result["nlc_pooled"], out / "nlc_vs_error.png")
    print(json.dumps({k: v for k, v in result.items() if k != "protocol"}, indent=1, default=float)[:6000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
