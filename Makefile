# The two commands of the README: `make reports` and `make test`. Each creates or refreshes the
# local virtual environment (.venv) on its own, so a fresh clone needs only python3 with pip and venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNTIME_STAMP := $(VENV)/.runtime-stamp
DATA   ?= data/sample

.PHONY: reports test test-fast sample notebooks bench clean venv browser

venv: $(STAMP)

# The runtime dependencies only (what `make reports` needs); re-installed when the list changes.
$(RUNTIME_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUNTIME_STAMP)

# Plus the dev extra (Spark, pytest, the browser test, ruff) for the tests and benchmarks.
$(STAMP): $(RUNTIME_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Main job: the report suite on the bundled sample -> reports/latest/index.html
reports: $(RUNTIME_STAMP)
	$(BIN)/cxresearch run --data $(DATA)

## The whole test suite: lint, library tests, nbval over the notebooks, and a headless-browser check.
test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## Headless Chromium for the browser test: installed from Debian's packages when missing and
## possible (root with apt); otherwise that one test is skipped with a message saying so.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver for the browser test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
	      >/dev/null 2>&1 || echo "note: could not install chromium; the browser test will be skipped"; \
	  else echo "note: chromium not installed and no root apt; the browser test will be skipped"; fi; \
	fi

## Quick loop while developing: skip tests marked slow (the model recoveries and the Spark engine).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" tests

## Regenerate the committed sample brand (deterministic: same seed, same files).
sample: $(STAMP)
	$(BIN)/cxresearch synth --locations 60 --customers 20000 --seed 7 --out data/sample --force

## Re-execute the notebooks on data/sample and store their outputs (what nbval checks).
notebooks: $(STAMP)
	cd notebooks && ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace *.ipynb

## Benchmarks print figures; they are not part of the tests.
bench: $(STAMP)
	$(BIN)/python benchmarks/synth.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/metrics.py
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/text.py
	$(BIN)/python benchmarks/alerts.py
	$(BIN)/python benchmarks/recovery.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
