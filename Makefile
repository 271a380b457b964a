# Two commands do all set-up on a fresh machine that has only python3:
#   make demo   -- the whole chain on a generated demo world, on a local Dask cluster
#   make test   -- lint, type-check and the test suite
PY ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
export PYTHONHASHSEED := 0

.PHONY: install demo test lint typecheck pytest bench clean

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-extras --python $(PY)
	touch $@

install: .venv/.synced

demo: install
	.venv/bin/smdown demo

lint: install
	.venv/bin/ruff check grids models pipeline tests benchmarks
	.venv/bin/ruff format --check grids models pipeline tests benchmarks

typecheck: install
	.venv/bin/mypy

pytest: install
	.venv/bin/pytest

test: lint typecheck pytest

bench: install
	.venv/bin/smdown bench

clean:
	rm -rf .venv $(TOOLS) .mypy_cache .ruff_cache .pytest_cache .hypothesis
