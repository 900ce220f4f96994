# The two commands a newcomer needs: `make run` and `make test`.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test venv lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || /usr/bin/python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

## Set up and start the service on its embedded defaults (SQLite, console, example namespace).
run: venv
	$(BIN)/chatops db upgrade
	$(BIN)/chatops run

## Set up everything the tests need (test cluster, browser, fixtures) and run the whole suite.
test: venv
	bash scripts/test-setup.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var
