# pricealert: `make run` starts the whole system, `make test` runs every test against real servers.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: run demo test lint fmt sync uv bench chaos soak screenshots
# Every service, test stack and bench starts Python processes: with PYTHONDONTWRITEBYTECODE set (some shells and CI
# images set it) each of them compiled every module it imports from source, seconds of CPU per process start.
unexport PYTHONDONTWRITEBYTECODE
SOURCES := libs/common/src libs/devstack/src libs/cli/src libs/testsupport/src services/auth/src \
	services/alerts/src services/ingest/src services/evaluator/src services/notifier/src

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

sync: uv
	@$(UV) sync --locked --quiet

## the whole system on this machine: bundled Redis, SQLite, local mailbox (var/mailbox), live Binance data;
## its data in var/ (VAR_DIR moves it); prints the page's address once up, or which port is in use
run: sync
	$(UV) run --locked python -m pricealert.devstack

## the same on the fake exchange's simulated market (no internet needed), its data apart in var/demo (or VAR_DIR)
demo: sync
	$(UV) run --locked python -m pricealert.devstack --demo

## every test, against real Redis, Postgres and SMTP servers it starts itself
test: sync
	$(UV) run --locked pytest

## the page's screenshots in docs/screenshots (the README's), taken by the browser tests (make test takes them too,
## into a temporary folder)
screenshots: sync
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(UV) run --locked pytest tests/browser -q

## the gate .ci/run passes before the tests: ruff, formatting and mypy --strict over every package
lint: sync
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .
	$(UV) run --locked mypy $(SOURCES)

fmt: sync
	$(UV) run --locked ruff format .
	$(UV) run --locked ruff check --fix .

## every performance row of the SPEC's table, measured here, each the median of 5 runs with min and max (about 12
## minutes on 2 idle cores; the report ends with the wall time): bench/results/bench.md (`bench/run.py --quick`: a smoke run)
bench: sync
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk) || { echo "bench needs wrk"; exit 1; }
	$(UV) run --locked python bench/run.py

## fault scenarios under load (32), each run 3 times against an oracle, then hostile input at the gateway (about 2
## hours; `uv run python -m chaos --runs 1` for one run each, `--only a,b` for some): chaos/results/chaos.md, .json
chaos: sync
	$(UV) run --locked python -m chaos

## one stack under a steady load for SOAK_MINUTES (default 30), sampled each minute; fails on growth that does not
## level off or on a lost, doubled or unexpected trigger or mail: chaos/results/soak.md, soak.json and soak_*.png
soak: sync
	SOAK_MINUTES=$(or $(SOAK_MINUTES),30) $(UV) run --locked python -m chaos.soak
