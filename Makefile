# audio-factsheet: two commands for a newcomer.
#   make factsheet   install into .venv (if needed) and write the demo FactSheet to reports/out/demo/
#   make test        install into .venv (if needed) and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install factsheet test model bench docs clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

factsheet: $(STAMP)
	$(BIN)/factsheet run --config configs/demo.toml --out reports/out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

model: $(STAMP)
	$(BIN)/python -m factsheet.models.train --out factsheet/models/default

bench: $(STAMP)
	$(BIN)/python bench/bench_adapter.py
	$(BIN)/python bench/bench_sources.py
	$(BIN)/python bench/bench_http.py
	$(BIN)/python bench/bench_domain_shift.py
	$(BIN)/python bench/bench_explanation.py

docs: $(STAMP)
	$(BIN)/python -c "from factsheet.sections import write_schema; write_schema('factsheet/schema/factsheet-1.2.0.schema.json')"
	$(BIN)/factsheet schema --markdown > docs/schema.md.tmp
	mv docs/schema.md.tmp docs/schema.md

clean:
	rm -rf reports/out build dist .pytest_cache
