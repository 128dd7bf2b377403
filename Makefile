# The two commands of the README: `make demo` and `make test`. Both install what they need.
VENV := .venv
CITYLAKE := $(VENV)/bin/citylake

.PHONY: setup demo test test-fast lint lock clean

setup:
	@bash infra/setup/bootstrap.sh
	@bash infra/setup/catalog_venv.sh
	@$(CITYLAKE) setup

demo: setup
	$(CITYLAKE) demo

test: setup
	$(VENV)/bin/python -m pytest

test-fast: setup
	$(VENV)/bin/python -m pytest -m "not spark and not airflow and not stack"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Re-pin after editing pyproject.toml dependencies.
lock:
	$(VENV)/bin/uv pip compile --python-version 3.11 pyproject.toml --extra dev -o requirements.lock

clean:
	rm -rf var .pytest_cache
