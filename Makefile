# make run        set up a virtualenv, create the database, and run the web
#                 app with a worker and the scheduler on the embedded setup
# make test       set up the same virtualenv and run the whole test suite
# make test-fast  the same, without the tests marked worker, services or
#                 browser (pytest.ini); there, starting a process fails
#                 the test instead of slowing the lane down
#
# Another Python, in its own virtualenv (.ci/run does this for each one):
#   make test PYTHON=/path/to/python3.12 VENV=.venv-3.12

PYTHON ?= python3
VENV ?= .venv
INI ?= development.ini
BIN = $(VENV)/bin

.PHONY: setup venv-python run test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py | venv-python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[testing]"
	touch $@

# A virtualenv made by another Python than $(PYTHON) is refused, not reused.
PYVERSION = -c 'import sys; print("%d.%d" % sys.version_info[:2])'

venv-python:
	@test -x $(BIN)/python || exit 0; \
	want=$$($(PYTHON) $(PYVERSION)) && have=$$($(BIN)/python $(PYVERSION)) && \
	test "$$want" = "$$have" || { echo "$(VENV) is Python $$have," \
	    "not $(PYTHON)'s $$want: pass VENV=.venv-$$want, or remove $(VENV)"; exit 1; }

run: setup
	$(BIN)/initialize_myapp_db $(INI)
	@echo "myapp: web on http://localhost:6543, worker and beat beside it; Ctrl-C stops all"
	$(BIN)/pceleryd $(INI) --beat & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; \
	trap 'exit 130' INT TERM; \
	$(BIN)/pserve $(INI)

test: setup
	$(BIN)/pytest

test-fast: setup
	MYAPP_FAST_LANE=1 $(BIN)/pytest -m "not worker and not services and not browser"

clean:
	rm -rf var .pytest_cache
