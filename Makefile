# Cardiowatch: every target sets up what it needs first (virtualenv, dependencies, services).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench bench-spine bench-qrs bench-beats bench-api bench-load api system-deps clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
	  { echo "Python 3.11 is required (found $$($(PYTHON) --version)); set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: this version resolves to the CPU build, not several GB of CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

system-deps:
	@scripts/ensure-system-deps

demo: $(STAMP) system-deps  ## the whole service on this machine, live in the terminal
	$(BIN)/cardiowatch up

test: $(STAMP) system-deps lint  ## lint, then unit and integration tests (real broker and Redis)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: bench-qrs bench-beats bench-spine bench-api bench-load  ## every benchmark (minutes, not a test)

$(VENV)/.bench-stamp: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

bench-qrs: $(VENV)/.bench-stamp  ## EC57 on all 48 records, XQRS and NeuroKit2 peers, noise test
	$(BIN)/python benchmarks/bench_qrs.py

bench-beats: $(STAMP)
	$(BIN)/cardiowatch evaluate beats --json out/beats_ds2.json --png out/beats_confusion.png
	$(BIN)/python benchmarks/bench_beats.py

bench-spine: $(STAMP) system-deps
	$(BIN)/python benchmarks/bench_spine.py --patients 200 --speed 1 --duration 300

bench-load: $(STAMP) system-deps  ## capacity search with the compute limit, then a worker kill
	$(BIN)/cardiowatch loadtest --find-capacity --patients 50 --duration 60 --alarm-patients 0 --json out/capacity.json
	$(BIN)/cardiowatch loadtest --patients 100 --duration 90 --workers 2 --kill-worker-at 40 --json out/kill.json --png out/kill.png

bench-api: $(STAMP) system-deps  ## XADD -> SSE latency, 1 and 200 subscribers on one API process
	$(BIN)/python benchmarks/bench_api.py --subscribers 1 --alerts 300
	$(BIN)/python benchmarks/bench_api.py --subscribers 200 --alerts 300

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache .hypothesis
