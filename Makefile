# The two commands a newcomer needs: `make run` stands the stack up, `make test` proves it works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install protos native migrate seed lint format

run: seed native
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# The edge's tests run twice: on its compiled build, and on its source interpreted, which must behave
# the same (edge/__init__.py).
test: lint native
	$(BIN)/pytest
	EDGE_NATIVE=off $(BIN)/pytest -q tests/edge

install: $(VENV)/.installed protos

# gRPC stubs are generated from protos/*.proto, never committed; `-I.` makes them import `protos.x_pb2`.
PROTOS := $(wildcard protos/*.proto)
STUBS := $(PROTOS:.proto=_pb2.py)

protos: $(STUBS)

protos/%_pb2.py: protos/%.proto $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. $<

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The edge's hot modules compiled by mypyc into edge/_native/ (edge/__init__.py says why and when used).
native: edge/_native/SOURCES.sha256

edge/_native/SOURCES.sha256: $(wildcard edge/*.py) $(VENV)/.installed
	EDGE_NATIVE=off $(BIN)/python -m edge.native

migrate: install
	$(BIN)/python -m kit.migrate

seed: migrate
	$(BIN)/python -m kit.seed

# Packages held to mypy --strict (every package, once its first version has landed).
TYPED := kit edge devsinks svc_auth svc_notify svc_user svc_product svc_order svc_inventory svc_discount svc_payment \
	perf/load perf/locustfile.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
