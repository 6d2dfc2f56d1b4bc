# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8080

.PHONY: demo test venv system-packages lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/ems demo --port $(PORT)

# Debian packages the browser and capture tests use; installed only when running as root.
system-packages:
	@if [ "$$(id -u)" = "0" ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/tshark ]; }; then \
		echo "Installing Debian packages: chromium tshark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tshark >/dev/null; \
	fi

test: venv system-packages
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check ems integrations rules web tests bench
	$(BIN)/lint-imports

bench: venv
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
