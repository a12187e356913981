# Every target installs what it needs into .venv on first use (idempotent).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
REQS   := $(wildcard requirements/*.txt) setup.py
STAMP  := $(VENV)/.installed

.PHONY: install lint test test-all demo clean

install: $(STAMP)

# mmcv 2.1.0 has no wheel for torch 2.13: it is compiled with its ops against
# the installed torch (about 12 min on 2 cores, once; pip caches the wheel).
$(STAMP): $(REQS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements/build.txt
	MMCV_WITH_OPS=1 MAX_JOBS=2 $(BIN)/python -m pip install -q --no-build-isolation -r requirements/mmcv.txt
	$(BIN)/python -m pip install -q -r requirements/runtime.txt
	$(BIN)/python -m pip install -q --no-build-isolation --no-deps -e .
	$(BIN)/python -m pip install -q -r requirements/tests.txt -r requirements/openvino.txt
	$(BIN)/python -c "import mmcv.ops, mmseg, mmseg_repmlp, openvino, nncf; print('installed: mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'openvino', openvino.__version__)"
	touch $(STAMP)

# Lint and import order (ruff.toml), and the one-way layers of
# docs/architecture.md (import-linter contracts in .importlinter).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The default suite (about 15 minutes on 2 CPU cores), after the lint.
test: lint
	$(BIN)/python -m pytest tests -q -m "not slow"

# Everything, slow tests included.
test-all: lint
	$(BIN)/python -m pytest tests -q

demo: $(STAMP)
	$(BIN)/python tools/demo.py

clean:
	rm -rf $(VENV) build dist *.egg-info mmseg_repmlp/.mim
