# pacerid-tui — every step of a training run, from a terminal.
# `make run` opens the dashboard on the embedded local provider; `make test` runs the whole suite.
# The guide's targets (aws-launch … sync-model) are thin wrappers over the same CLI.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/local.yaml
AWS_CONFIG ?= configs/base.yaml
CLI := $(BIN)/pacerid-tui

.PHONY: run test lint venv system-deps bench-deps bench screenshot faults \
	aws-launch aws-upload aws-setup aws-data aws-train aws-logs aws-ssh aws-status \
	aws-download aws-terminate export sync-model

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[trainer,dev]'
	touch $(STAMP)

system-deps:
	@scripts/system-deps.sh

run: $(STAMP)
	$(CLI) --config $(CONFIG)

# The suite runs in parallel (pytest-xdist): most tests wait on sshd, tmux, training hosts and
# timers rather than compute, so more workers than cores pay. TEST_WORKERS=1 runs it serially.
TEST_WORKERS ?= 3

test: $(STAMP) system-deps
	$(BIN)/ruff check pacerid_tui trainer tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --durations=15 -n $(TEST_WORKERS)

# Every phase of a run × every fault (tests/faults/cells.py) on the local provider, three cells at
# a time, printed as the Markdown table docs/reliability.md keeps; exit 1 when a cell fails.
faults: $(STAMP)
	$(BIN)/python -W ignore -m tests.faults.matrix

lint: $(STAMP)
	$(BIN)/ruff check pacerid_tui trainer tests benchmarks
	$(BIN)/ruff format --check pacerid_tui trainer tests benchmarks
	$(BIN)/mypy

# docs/screenshot.svg: the dashboard over the fixed demo runs of the snapshot tests (tests/ui/demo.py).
screenshot: $(STAMP)
	$(BIN)/python -m tests.ui.demo docs/screenshot.svg

aws-launch: $(STAMP)
	$(CLI) launch --config $(AWS_CONFIG)
aws-upload: $(STAMP)
	$(CLI) upload --config $(AWS_CONFIG)
aws-setup: $(STAMP)
	$(CLI) setup --config $(AWS_CONFIG)
aws-data: $(STAMP)
	$(CLI) data --config $(AWS_CONFIG)
aws-train: $(STAMP)
	$(CLI) train --follow --config $(AWS_CONFIG)
aws-logs: $(STAMP)
	$(CLI) logs --follow --config $(AWS_CONFIG)
aws-ssh: $(STAMP)
	$(CLI) ssh --config $(AWS_CONFIG)
aws-status: $(STAMP)
	$(CLI) status --config $(AWS_CONFIG)
aws-download: $(STAMP)
	$(CLI) download --config $(AWS_CONFIG)
aws-terminate: $(STAMP)
	$(CLI) terminate --config $(AWS_CONFIG)
export: $(STAMP)
	$(CLI) export --config $(AWS_CONFIG)
sync-model: $(STAMP)
	@test -n "$(VERSION)" || { echo "Give a version: make sync-model VERSION=v1.0.0"; exit 2; }
	$(CLI) sync-model $(VERSION) --config $(AWS_CONFIG)

# Every benchmark script, one after the other: the files in benchmarks/ that carry the line
# "# make bench runs this script" (helper modules such as common.py or log_followers.py do not).
# Each prints Markdown rows for docs/benchmarks.md. QUICK=1 passes --quick to the scripts that
# take it. Like `make test`, it first installs what its baselines need (sshd, tmux, rsync:
# scripts/system-deps.sh --bench). A failing script does not stop the others; the target fails
# at the end, and exits 0 when every script ran.
bench-deps:
	@scripts/system-deps.sh --bench

bench: $(STAMP) bench-deps
	@failed=""; ran=0; for script in $$(grep -l '^# make bench runs this script' benchmarks/*.py); do \
		args=""; [ -n "$(QUICK)" ] && grep -q -- '"--quick"' $$script && args=--quick; \
		echo "== $$script $$args"; \
		ran=$$((ran + 1)); \
		$(BIN)/python $$script $$args || failed="$$failed $$script"; \
	done; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi; \
	echo "== all $$ran benchmark scripts ran"
