# Two commands: `make demo` and `make test`. Both create .venv when missing.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1

.PHONY: demo demo-real test lint install clean browser fuzz

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,real]"
	touch $(STAMP)

install: $(STAMP)

# the demo job, then the quick presets of the studies that run on committed checkpoints,
# then the landing page results/index.html
STUDIES_QUICK := rankiqa explainers marked_models quality_vs_accuracy

demo: $(STAMP)
	$(BIN)/qbench run demo
	@for s in $(STUDIES_QUICK); do \
	  echo "== studies/$$s.py --preset quick"; \
	  $(BIN)/python studies/$$s.py --preset quick || exit 1; done
	$(BIN)/qbench report --all results

# the studies on a real ImageNet classifier (efficientnet-lite0, 224 px, crops of the refs
# photographs); kept out of `make demo` to hold it near 15 minutes on 2 cores
STUDIES_REAL := quality_vs_accuracy explainers

demo-real: $(STAMP)
	@for s in $(STUDIES_REAL); do \
	  echo "== studies/$$s.py --preset real-quick"; \
	  $(BIN)/python studies/$$s.py --preset real-quick || exit 1; done
	$(BIN)/qbench report --all results

# Chromium + chromedriver for the browser tests (tests/test_report_browser.py): installed
# with apt-get when missing and we are root; never fails the build (the tests then skip).
browser:
	@if command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium and chromium-driver for the browser tests"; \
	  (apt-get install -y -q chromium chromium-driver || \
	   (apt-get update -q && apt-get install -y -q chromium chromium-driver)) >/dev/null 2>&1 \
	  || echo "note: could not install chromium-driver; the browser tests will skip"; \
	else echo "note: no chromedriver (apt-get install chromium chromium-driver);" \
	  "the browser tests will skip"; fi

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# the property-based fuzz suite with its large budget (>= 10,000 examples; tests/fuzz/conftest.py)
fuzz: $(STAMP)
	QBENCH_FUZZ=1 $(BIN)/python -m pytest -q tests/fuzz

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) results/demo results/index.html $(STUDIES_QUICK:%=results/%/quick)
