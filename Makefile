# The two commands a newcomer needs: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-fast venv install packages lint bench clean

venv: $(VENV)/.installed

# A development .venv: the service, the telemetry daemon and the test tools.
$(VENV)/.installed: pyproject.toml
	$(MAKE) --no-print-directory packages EXTRAS='[server,test]'
	touch $@

## Production (DEPLOY.md): the service's dependencies only (extra `server`), no test tools, no
## pip cache.
install:
	$(MAKE) --no-print-directory packages EXTRAS='[server]' PIP_FLAGS=--no-cache-dir

packages:
	test -x $(BIN)/python || /usr/bin/python3 -m venv $(VENV)
	$(BIN)/pip install -q $(PIP_FLAGS) --upgrade pip
	rm -f $(BIN)/chatops-mailprog  # a symlink: pip must not write through it
	$(BIN)/pip install -q $(PIP_FLAGS) -e '.$(EXTRAS)'
	# Slurm runs the MailProg as `slurm`, which cannot write __pycache__: compile it now, and
	# point the venv's chatops-mailprog at the fast script (no site import; see DEPLOY.md).
	/usr/bin/python3 -m compileall -q chatops/__init__.py chatops/mailprog.py
	ln -sf ../../scripts/chatops-mailprog $(BIN)/chatops-mailprog

## Set up and start the service on its embedded defaults (SQLite, console, example namespace).
## `make run PORT=8081` when 8080 is taken; CHATOPS_HOME=/tmp/x keeps the data elsewhere.
PORT ?= 8080
run: venv
	$(BIN)/chatops db upgrade
	$(BIN)/chatops run --port $(PORT)

## Set up everything the tests need (test cluster, browser, fixtures) and run the whole suite.
test: venv
	bash scripts/test-setup.sh
	bash scripts/test-cluster.sh up --quiet
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

## The tests that need no cluster, Synapse or browser (under a minute).
test-fast: venv
	bash scripts/test-setup.sh --fast
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q -m "not slow"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var
