# airflow-failnotify: developer and CI entry points.
#
#   make test        everything CI runs: system packages (as root), venv, ruff, mypy, the whole suite
#                    (two pytest sessions side by side, see devtools/run_suite.py; one with PYTEST_ARGS)
#   make test-fast   the pure core only (tests/core, marker `fast`); needs just the venv
#   make demo        local demo (DEMO_ONCE=1 for a single pass)
#   make ui          the React app's bundle (npm ci from ui/package-lock.json, then vite), when missing or stale
#   make lint        ruff + mypy
#   make bench       benchmarks (bench/run.py; item 7, the React pages' load, alone: python -m bench.ui_pages)
#   make soak        the long soak tests (marker `soak`, excluded from `make test`)
#   make constraints regenerate constraints.txt (the lock file) from the venv
#   make clean       caches and build output (keeps .venv); `make distclean` also removes .venv
#
# Variables: PYTHON (interpreter for the venv, default python3), VENV (default .venv),
# PYTEST_ARGS (extra pytest arguments), TEST_TIMEOUT (per-test seconds, default 300).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.failnotify-installed
EXTRAS := test,devtools,postgres,celery
TEST_TIMEOUT ?= 300
PYTEST_ARGS ?=
PYTEST_FLAGS := -q -p no:cacheprovider --durations=15 --timeout=$(TEST_TIMEOUT)

# Debian packages the suite needs: the PostgreSQL server (throwaway test server), Chromium (view tests)
# and the Redis server (the CeleryExecutor's broker in the distributed tests).
PG_INITDB_GLOB := /usr/lib/postgresql/*/bin/initdb
CHROMIUM := /usr/bin/chromium
REDIS_SERVER := /usr/bin/redis-server

# run_pytest(ARGS): run pytest, and turn exit code 5 ("no tests collected") into a clear failure.
define run_pytest
	rc=0; $(VPY) -m pytest $(PYTEST_FLAGS) $(1) $(PYTEST_ARGS) || rc=$$?; \
	if [ "$$rc" -eq 5 ]; then \
		echo "ERROR: pytest collected no tests (exit code 5) for: $(1) $(PYTEST_ARGS)" >&2; \
		echo "ERROR: a test run that runs nothing is a defect (missing tests, bad path or marker)." >&2; \
		exit 1; \
	fi; \
	exit $$rc
endef

.PHONY: help venv system-deps ui test test-fast lint ruff mypy demo bench soak constraints clean distclean

help:
	@sed -n '2,16p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------------------
venv: $(STAMP)

# Re-run when setup.py, pyproject.toml (build backend) or the lock file change. Installs exactly the locked versions.
$(STAMP): setup.py pyproject.toml constraints.txt
	@if ! $(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
			echo ">> $(PYTHON) lacks venv/ensurepip: installing python3-venv"; \
			DEBIAN_FRONTEND=noninteractive apt-get update -q; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; \
		else \
			echo "ERROR: $(PYTHON) cannot create virtualenvs; install python3-venv (Debian) first." >&2; exit 1; \
		fi; \
	fi
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "ERROR: Python >= 3.10 needed, $(PYTHON) is " + sys.version)'
	@if [ ! -x "$(VPY)" ]; then echo ">> creating $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e '.[$(EXTRAS)]'
	@touch $@

# Debian packages. As root: install what is missing (one apt-get update). Not root: say what is
# missing and carry on (the tests that need it skip with the reason) - except under CI=true, where a
# missing package is an error because CI must run every test.
system-deps:
	@missing=""; \
	if ! ls $(PG_INITDB_GLOB) >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if [ ! -x $(CHROMIUM) ]; then missing="$$missing chromium"; fi; \
	if [ ! -x $(REDIS_SERVER) ]; then missing="$$missing redis-server"; fi; \
	if [ -z "$$missing" ]; then echo ">> system packages present (postgresql, chromium, redis-server)"; exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
		echo ">> installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "ERROR: missing Debian packages:$$missing (run as root, or install them in the CI image)" >&2; \
		exit 1; \
	else \
		echo "WARNING: missing Debian packages:$$missing - install them with:" >&2; \
		echo "WARNING:     sudo apt-get install -y$$missing" >&2; \
		echo "WARNING: the tests that need them will be skipped." >&2; \
	fi

# The React app (ui/) -> one UMD file, package data of the wheel, served by the plugin's API app.
# Rebuilt when a source, the manifest or the lock file is newer than the bundle; the npm packages are
# installed with `npm ci` (exactly the lock file) when the lock file is newer than the install.
UI_BUNDLE := airflow_failnotify/plugins/static/ui/failnotify.umd.js
UI_SOURCES := $(shell find ui/src -type f 2>/dev/null) ui/package.json ui/package-lock.json ui/vite.config.ts \
	ui/tsconfig.json
UI_INSTALLED := ui/node_modules/.failnotify-installed

ui: $(UI_BUNDLE)

$(UI_INSTALLED): ui/package.json ui/package-lock.json
	@command -v npm >/dev/null || { echo "ERROR: npm (Node.js >= 20.19) is needed to build the React app" >&2; exit 1; }
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(UI_BUNDLE): $(UI_INSTALLED) $(UI_SOURCES)
	cd ui && npm run --silent build
	@touch $@

# ---------------------------------------------------------------------------------------------------
# Checks and tests
# ---------------------------------------------------------------------------------------------------
ruff: venv
	$(VENV)/bin/ruff check .

# The whole package and the dev tools; the core, the service layer and the store also under --strict
# (subclassing Any allowed: reportlab, the PDF library, ships no type information).
MYPY := $(VENV)/bin/mypy airflow_failnotify devtools && \
	$(VENV)/bin/mypy --strict --allow-subclassing-any airflow_failnotify/core airflow_failnotify/service airflow_failnotify/store

mypy: venv
	$(MYPY)

lint: ruff mypy

test: system-deps venv ui
	$(VENV)/bin/ruff check .
	$(MYPY)
	$(VPY) -m devtools.run_suite $(if $(PYTEST_ARGS),--serial) $(PYTEST_FLAGS) $(PYTEST_ARGS)

test-fast: venv
	@$(call run_pytest,tests/core -m fast)

# The summary table (case, expected, observed) is printed at the end and kept in test-artifacts/.
# FAILNOTIFY_SOAK_MINUTES=1 (and FAILNOTIFY_SOAK_DOWN_PASSES=10) for a quick check of the harness.
soak: system-deps venv ui
	@export FAILNOTIFY_SUMMARY_FILE=test-artifacts/soak-summary.txt; $(call run_pytest,tests -m soak)

# ---------------------------------------------------------------------------------------------------
# Demo and benchmarks
# ---------------------------------------------------------------------------------------------------
# DEMO_ONCE=1: headless, exits once one mail of each kind has arrived. DEMO_ARGS: more options (--help).
# devtools/ is a folder of the clone, not of the installed package: `python -m` finds it from here.
demo: venv ui
	$(VPY) -m devtools.demo $(if $(DEMO_ONCE),--once) $(DEMO_ARGS)

bench: venv ui
	$(VPY) -m bench.run

# ---------------------------------------------------------------------------------------------------
# Lock file
# ---------------------------------------------------------------------------------------------------
# Resolves setup.py's requirements (all extras) into the venv WITHOUT the old lock, keeping versions
# already installed when they still fit, then freezes the whole venv (minus the project and anything
# installed from a local path). Review the diff, run `make test`, commit.
constraints:
	@if [ ! -x "$(VPY)" ]; then $(PYTHON) -m venv $(VENV); $(PIP) install -q --upgrade pip; fi
	$(PIP) install -q -e '.[$(EXTRAS)]'
	@{ \
		echo "# Lock file of the tested environment: pip install -c constraints.txt -e '.[$(EXTRAS)]'"; \
		echo "# Generated by 'make constraints' (pip freeze of $(VENV)); do not edit by hand."; \
		echo "# Python $$($(VPY) -c 'import platform; print(platform.python_version())'), $$(uname -m)"; \
		$(PIP) freeze --exclude-editable \
			| grep -v -i -E '^(airflow-failnotify|airflow_failnotify)(==| @ |$$)' \
			| grep -v -E '( @ file:|^-e |^file:)' ; \
	} > constraints.txt.tmp
	@mv constraints.txt.tmp constraints.txt
	@touch $(STAMP)
	@echo ">> constraints.txt: $$(grep -vc '^#' constraints.txt) pinned packages"

# ---------------------------------------------------------------------------------------------------
# Cleaning
# ---------------------------------------------------------------------------------------------------
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache test-artifacts .demo constraints.txt.tmp \
		airflow_failnotify/plugins/static/ui ui/node_modules
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
