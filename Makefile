# containers-storage for Python — set-up, demo, tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := drivers/vfs drivers/overlay drivers/btrfs plugins/json-metadata plugins/yaml-metadata
EDITABLES := -e '.[dev]' $(foreach p,$(PLUGINS),$(if $(wildcard $(p)/pyproject.toml),-e $(p)))
STAMP := $(VENV)/.installed
DEMO_STORE ?= $(CURDIR)/.demo-store

.PHONY: install demo test lint typecheck pytest bench vm-test clean

install: $(STAMP)

# editable_mode=compat: plain path entries in .pth files instead of setuptools' import-hook
# finders, which cost every start of the CLI ~12 ms.
$(STAMP): Makefile pyproject.toml $(wildcard drivers/*/pyproject.toml plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q --no-build-isolation --config-settings editable_mode=compat $(EDITABLES)
	$(BIN)/python -m compileall -q cs_core drivers plugins >/dev/null
	touch $(STAMP)

demo: install
	DEMO_STORE=$(DEMO_STORE) CS=$(BIN)/containers-storage bash examples/demo.sh

lint: install
	$(BIN)/ruff check cs_core drivers plugins tests examples bench

typecheck: install
	$(BIN)/mypy cs_core drivers/*/cs_driver_* plugins/*/cs_metadata_* examples/third-party-driver/cs_driver_snapshotdir examples/library_usage.py bench/run.py

pytest: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

VM ?=
vm-test:
	vagrant up --no-provision $(VM)
	vagrant provision $(VM)

clean:
	rm -rf $(VENV) $(DEMO_STORE) build *.egg-info */*/*.egg-info
