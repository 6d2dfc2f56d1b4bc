# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8080
PACKAGES := ems integrations rules web

.PHONY: demo demo-day test venv system-packages lint bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The editable install leaves the product's sources uncompiled: compile them once, so a start with
# bytecode writing disabled (PYTHONDONTWRITEBYTECODE, a read-only checkout) does not recompile them.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,programs]'
	$(BIN)/python -m compileall -q $(PACKAGES)
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/ems demo --port $(PORT)

# A whole day of the demo home in six minutes: TOU periods, a DR event, a new billing cycle at midnight.
demo-day: venv
	$(BIN)/ems demo --port $(PORT) --scenario config/scenarios/day.yaml --start 2026-07-09T06:00 --speed 240 \
		--data-dir data/demo-day

# Debian packages the browser, capture, PostgreSQL, screenshot and MQTT tests use; installed only when
# running as root and missing. The PostgreSQL tests start a throwaway cluster of their own
# (tests/pg.py) with Debian's binaries in /usr/lib/postgresql/N/bin; the packaged cluster is not used.
# The MQTT tests start their own mosquitto on a free port (tests/mosquitto.py), never the service.
system-packages:
	@if [ "$$(id -u)" = "0" ]; then \
		missing=""; \
		[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
		[ -x /usr/bin/tshark ] || missing="$$missing tshark"; \
		ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
		dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing="$$missing fonts-noto-cjk"; \
		[ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
		if [ -n "$$missing" ]; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		fi; \
	fi

# Two workers (the suite's budget is 10 minutes on 2 cores); each test file stays in one worker.
PYTEST_WORKERS ?= 2
test: venv system-packages
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check ems integrations rules web tests bench
	$(BIN)/lint-imports

# The benchmarks; bench/soak.py's fuzz stage needs atheris (the `fuzz` extra, a compiled wheel).
bench: venv
	$(BIN)/pip install --quiet -e '.[test,programs,fuzz]'
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

soak: venv
	$(BIN)/pip install --quiet -e '.[test,programs,fuzz]'
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
