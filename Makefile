# The two commands a newcomer needs: `make run` stands the stack up, `make test` proves it works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test chaos install lock protos native migrate seed lint format

run: seed native
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m kit.supervise Procfile

# The edge's tests run twice: on its compiled build, and on its source interpreted, which must behave
# the same (edge/__init__.py).
test: lint native
	$(BIN)/pytest --ignore=tests/faults
	EDGE_NATIVE=off $(BIN)/pytest -q tests/edge

# The fault suite (tests/faults): servers of its own on ports of its own, so it runs beside `make test`
# and `make run`; it restarts, stops and flushes them under load and prints what it measured.
CHAOS_ENV := SHOP_TEST_NS=chaos SHOP_TEST_REDIS_DB=14 SHOP_TEST_PORT_OFFSET=12000

chaos: native
	$(CHAOS_ENV) $(BIN)/pytest -s -q tests/faults

install: $(VENV)/.installed protos

# gRPC stubs are generated from protos/*.proto, never committed; `-I.` makes them import `protos.x_pb2`.
PROTOS := $(wildcard protos/*.proto)
STUBS := $(PROTOS:.proto=_pb2.py)

protos: $(STUBS)

protos/%_pb2.py: protos/%.proto $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. $<

# Dependencies come from the lock (requirements/dev.txt: exact versions and their hashes), then the
# project itself without resolving anything.
$(VENV)/.installed: requirements/dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# After changing a dependency in pyproject.toml: re-resolve the three locks (they share the runtime
# versions) and commit them. `make lock UPGRADE=--upgrade` moves every package to its newest release.
LOCK := $(BIN)/uv pip compile pyproject.toml --generate-hashes --universal --python-version 3.11 \
	--quiet --no-header $(UPGRADE)

lock: $(VENV)/.installed
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --extra sinks -c requirements/runtime.txt -o requirements/sinks.txt
	$(LOCK) --extra dev -c requirements/runtime.txt -o requirements/dev.txt

# The edge's hot modules compiled by mypyc into edge/_native/ (edge/__init__.py says why and when used).
native: edge/_native/SOURCES.sha256

edge/_native/SOURCES.sha256: $(wildcard edge/*.py) $(VENV)/.installed
	EDGE_NATIVE=off $(BIN)/python -m edge.native

migrate: install
	$(BIN)/python -m kit.migrate

seed: migrate
	$(BIN)/python -m kit.seed

# Packages held to mypy --strict (every package, once its first version has landed).
TYPED := kit edge devsinks svc_auth svc_notify svc_user svc_product svc_order svc_inventory svc_discount svc_payment

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
