# PrintLab: the two commands a fresh machine needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Every direct and indirect dependency (runtime and test), pinned; `make lock` regenerates it.
LOCK   := requirements/constraints.txt
UV_VERSION := 0.13.9
# OctoPrint, which the printer tests start with its Virtual Printer, in a virtual environment of its
# own (its dependencies are not PrintLab's): every package pinned in $(OCTOPRINT_LOCK).
OCTOPRINT_VERSION := 1.11.8
OCTOPRINT_VENV    := .octoprint-venv
OCTOPRINT_LOCK    := requirements/octoprint.txt

.PHONY: demo test install install-test browser axe pg-client nginx redis octoprint lint format bench lock lock-octoprint clean

# Install PrintLab and start it on SQLite with demo data (prints the URL and the workstation password).
demo: install
	$(BIN)/printlab demo --serve

# Install the test dependencies (Chromium and axe-core for the browser tests, pg_dump/pg_restore for
# the backup tests, nginx and redis-server for the reverse-proxy and rate-limit tests, OctoPrint for
# the printer tests) and run every
# test, on SQLite and PostgreSQL, one pytest-xdist worker per CPU core (`-n auto` in pyproject.toml).
# Set PRINTLAB_TEST_BACKENDS=sqlite to skip PostgreSQL on a machine without it.
test: install-test browser axe pg-client nginx redis octoprint
	$(BIN)/ruff check .
	$(BIN)/pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) -e '.[test]'

# Browser tests drive the system's Chromium; Playwright's own browser download is not used.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else echo "Chromium is needed for the browser tests: sudo apt-get install -y chromium"; exit 1; fi; }

# axe-core, the accessibility checker the browser tests inject into every page, and oidc-provider,
# the OpenID provider the campus sign-in tests run, pinned in package-lock.json and installed into
# node_modules/ by npm (Node.js from the OS packages if missing).
axe:
	@{ test -f node_modules/axe-core/axe.min.js && test -f node_modules/oidc-provider/package.json; } || { \
	  command -v npm >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; \
	    else echo "npm is needed to install axe-core for the browser tests: sudo apt-get install -y nodejs npm"; exit 1; fi; }; \
	  npm ci --no-audit --no-fund; }

# pg_dump and pg_restore, which `printlab backup`/`restore` run on PostgreSQL (and their tests).
pg-client:
	@command -v pg_dump >/dev/null 2>&1 && command -v pg_restore >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql-client; \
	  else echo "pg_dump and pg_restore are needed for the backup tests: sudo apt-get install -y postgresql-client"; exit 1; fi; }

# nginx and openssl (its test certificate): the tests run deploy/nginx/printlab.conf in front of
# `printlab serve`.
nginx:
	@{ command -v nginx || test -x /usr/sbin/nginx; } >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx openssl; \
	  else echo "nginx and openssl are needed for the reverse-proxy tests: sudo apt-get install -y nginx openssl"; exit 1; fi; }

# redis-server: tests start their own on a free port (and stop it, to see PrintLab carry on without it).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; \
	  else echo "redis-server is needed for the rate-limit tests: sudo apt-get install -y redis-server"; exit 1; fi; }

# OctoPrint with its Virtual Printer: the printer tests start their own on a free loopback port
# (tests/servers.py finds it in $(OCTOPRINT_VENV)/bin). Rebuilt when $(OCTOPRINT_LOCK) changes.
octoprint: $(OCTOPRINT_VENV)/bin/octoprint

$(OCTOPRINT_VENV)/bin/octoprint: $(OCTOPRINT_LOCK)
	rm -rf $(OCTOPRINT_VENV)
	$(PYTHON) -m venv $(OCTOPRINT_VENV)
	$(OCTOPRINT_VENV)/bin/pip install -q --upgrade pip
	$(OCTOPRINT_VENV)/bin/pip install -q -r $(OCTOPRINT_LOCK)
	test -x $@ && touch $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-test
	$(BIN)/python bench/run_all.py

# Re-resolve $(LOCK) from pyproject.toml for Python 3.11 on Linux x86_64, after changing the
# dependencies there. Pins that still fit are kept; `make lock UPGRADE=1` moves every pin to the
# newest release allowed. uv runs from a throwaway virtual environment.
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q uv==$(UV_VERSION); \
	"$$tmp/venv/bin/uv" pip compile pyproject.toml --extra test --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" \
	  $(if $(UPGRADE),--upgrade) --quiet --output-file $(LOCK)

# Re-pin $(OCTOPRINT_LOCK) after changing OCTOPRINT_VERSION: install it into a throwaway virtual
# environment and freeze what that installed.
lock-octoprint:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/pip" install -q octoprint==$(OCTOPRINT_VERSION); \
	{ echo "# OctoPrint and every package it needs, pinned, for the printer tests' own virtual environment"; \
	  echo "# (.octoprint-venv/, made by \`make octoprint\`). Written by \`make lock-octoprint\`, which installs"; \
	  echo "# OCTOPRINT_VERSION from the Makefile into a throwaway environment and freezes it."; \
	  "$$tmp/venv/bin/pip" freeze; } > $(OCTOPRINT_LOCK)

clean:
	rm -rf $(VENV) $(OCTOPRINT_VENV) instance node_modules .pytest_cache .ruff_cache
