# Two entry points: `make quickstart` (train -> convert -> fine-tune -> test on the bundled digits)
# and `make test` (the test suite). Both create or reuse a virtual environment keyed by a hash
# of the dependency lists in pyproject.toml, so an unchanged dependency set is never reinstalled.
PYTHON ?= python3
DEPS_HASH := $(shell $(PYTHON) .ci/deps_hash.py)
VENV ?= $(HOME)/.cache/snnlstm/venv-$(DEPS_HASH)
BIN := $(VENV)/bin
RUN_DIR ?= runs/quickstart

.PHONY: venv quickstart test clean-venv

venv:
	@VENV="$(VENV)" PYTHON="$(PYTHON)" bash .ci/ensure_venv.sh

quickstart: venv
	WANDB_MODE=offline $(BIN)/python -m snnlstm.quickstart --config configs/quickstart.yaml --root-dir $(RUN_DIR)

test: venv
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf "$(VENV)"
