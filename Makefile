# AITIP: two commands do all set-up on a fresh machine.
#   make up    start the local platform (hub, proxy, platform service) on 127.0.0.1
#   make test  run the test suite
# Both install what they need first (Debian packages, a venv, the pinned npm proxy).

SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.aitip-installed
CHP   := node_modules/.bin/configurable-http-proxy
PYTEST_ARGS ?=

.PHONY: up test deps bench clean messages

deps: $(STAMP) $(CHP)

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh python
	touch $(STAMP)

$(CHP): package.json package-lock.json
	bash scripts/bootstrap.sh node

up: deps
	$(VENV)/bin/aitip up

# Test files run in parallel on this many processes (a file's tests stay together, with their fixtures); 0: one.
PYTEST_WORKERS ?= 2

test: deps
	$(VENV)/bin/ruff check --select F,E9 extensions tests
	bash scripts/ensure-postgres.sh
	mkdir -p test-artifacts
	$(VENV)/bin/python -m pytest -p no:cacheprovider --basetemp=test-artifacts/pytest --durations=25 \
		-n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

LOCALES := extensions/aitip/locale
POT     := $(LOCALES)/aitip.pot
MESSAGE_SOURCES := extensions/aitip panel_apps templates  # as in tests/test_i18n.py

# Extract every _()/N_()/ngettext() mark (babel.cfg) and merge it into both catalogs; then translate the
# new zh_CN entries (tests/test_i18n.py fails on any left empty or fuzzy).
messages: deps
	mkdir -p $(LOCALES)
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --project AITIP -o $(POT) $(MESSAGE_SOURCES)
	for lang in en zh_CN; do \
	  $(VENV)/bin/pybabel update -D aitip -i $(POT) -d $(LOCALES) -l $$lang --no-fuzzy-matching --ignore-obsolete --init-missing \
	    --no-wrap || exit 1; \
	done

clean:
	rm -rf $(VENV) node_modules .pytest_cache test-artifacts
