# Set-up and run targets. Each one creates .venv on first use, so a fresh clone needs only
# `make example` (train the digits example) or `make test` (run the suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here (not in pyproject, which accepts torch>=2.4) so set-up takes the CPU
# wheel this machine kind ships instead of a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: example test lint bench docs clean

$(VENV)/.installed-%: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_PIN)" -e ".[$*]"
	touch $@

example: $(VENV)/.installed-examples
	$(PY) examples/digits.py

# the test extras: dev plus the optional integrations whose tests run in CI
TEST_EXTRAS ?= dev,hf,cli

test: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest -q

lint: $(VENV)/.installed-$(TEST_EXTRAS)
	$(VENV)/bin/ruff check torchkit tests examples benchmarks
	$(VENV)/bin/ruff format --check torchkit tests examples benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) benchmarks/loop_overhead.py
	$(PY) benchmarks/autounit_overhead.py
	$(PY) benchmarks/observability_overhead.py
	$(PY) benchmarks/checkpoint_stall.py
	$(PY) benchmarks/multi_dataloader_overhead.py
	$(PY) benchmarks/live_publish.py
	$(PY) benchmarks/cli_import.py

clean:
	rm -rf $(VENV) runs build *.egg-info
