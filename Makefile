# The two commands a newcomer needs: `make run` stands the stack up, `make test` proves it works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-order-path test-the-rest chaos fuzz pgbouncer perf-search install lock protos native migrate seed lint format load load-smoke-ci bench bench-baseline

# `make run SCALE=2` (or SCALE_ORDER=2 ...) runs more instances; PGBOUNCER=1 pools through PgBouncer.
run: seed native $(if $(filter 1,$(PGBOUNCER)),pgbouncer)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m shop.stack Procfile

pgbouncer:
	command -v pgbouncer >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null)

# The suite runs as two halves side by side, each in a test corner of its own (tests/conftest.py): a
# test mostly waits on its servers, so two runs share two cores well (4.7 minutes one after the
# other, 2.7 side by side). The second half's corner is the first's namespace with a `b`, Redis database
# SHOP_TEST_REDIS_DB_B (11) and ports 500 above. The edge's tests run twice: on its compiled build, and
# on its source interpreted, which must behave the same (edge/loader.py).
ORDER_PATH_TESTS := tests/e2e tests/svc_order tests/svc_inventory tests/svc_payment tests/svc_discount
SECOND_CORNER := SHOP_TEST_NS=$${SHOP_TEST_NS:-test}b SHOP_TEST_REDIS_DB=$${SHOP_TEST_REDIS_DB_B:-11} \
	SHOP_TEST_PORT_OFFSET=$$(( $${SHOP_TEST_PORT_OFFSET:-10000} + 500 ))

# The lint and the edge's compilation are one core each, so they too run side by side. CI adds the
# fault suite as a third run beside the halves (`make test BESIDE=chaos`): the halves wait on their
# servers often enough to leave it room (on a machine at 3.4 s for `sum(range(10**8))`, 287 s for the
# three at once against 342 s for the halves and then the fault suite). It runs niced (`CHAOS_NICE`),
# its servers and stack with it: the tests keep their timings, the fault suite takes the idle time
# (its own assertions allow seconds where the tests' allow fractions of one).
BESIDE ?=
test: install
	$(MAKE) --no-print-directory -j2 --output-sync=target lint native
	$(MAKE) --no-print-directory -j3 --output-sync=target test-order-path test-the-rest $(BESIDE) \
		CHAOS_NICE="nice -n 5"

test-order-path:
	$(BIN)/pytest $(ORDER_PATH_TESTS)

test-the-rest:
	$(SECOND_CORNER) $(BIN)/pytest --ignore=tests/faults $(addprefix --ignore=,$(ORDER_PATH_TESTS))
	$(SECOND_CORNER) EDGE_NATIVE=off $(BIN)/pytest -q tests/edge

# The fault suite (tests/faults): servers of its own on ports of its own, so it runs beside `make test`
# and `make run`; it restarts, stops and flushes them under load and prints what it measured.
CHAOS_ENV := SHOP_TEST_NS=chaos SHOP_TEST_REDIS_DB=14 SHOP_TEST_PORT_OFFSET=12000

CHAOS_NICE ?=
chaos: native
	$(CHAOS_ENV) $(CHAOS_NICE) $(BIN)/pytest -s -q tests/faults

# A long schemathesis run through the edge (make test runs the same test with a few cases per operation).
FUZZ_EXAMPLES ?= 100
fuzz: install native
	SHOP_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -s tests/e2e/test_schema_fuzz.py

# Search, facets and suggestions measured through the edge of a stack of their own (perf/search_stack.py,
# which says what it runs); override the corner with `make perf-search PERF_ENV="..."`.
PERF_ENV ?= SHOP_TEST_NS=perf SHOP_TEST_REDIS_DB=12 SHOP_TEST_PORT_OFFSET=21000

perf-search: native
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PERF_ENV) $(BIN)/python perf/search_stack.py

install: $(VENV)/.installed protos

# gRPC stubs are generated from protos/*.proto, never committed; `-I.` makes them import `protos.x_pb2`.
PROTOS := $(wildcard protos/*.proto)
STUBS := $(PROTOS:.proto=_pb2.py)

protos: $(STUBS)

protos/%_pb2.py: protos/%.proto $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. $<

# Dependencies come from the lock (requirements/dev.txt: exact versions and their hashes), then the
# project itself without resolving anything. pip installs only uv (its own lock, requirements/uv.txt),
# and uv the rest: ~5 s instead of pip's ~40 on a fresh machine, where CI pays it on every run. With
# their bytecode compiled (uv does not by default; where PYTHONDONTWRITEBYTECODE is set, as on this
# machine, nothing ever would): a service imports in 0.4 s instead of 1.05, and the tests start hundreds.
UV_INSTALL := $(BIN)/uv pip install --quiet --python $(BIN)/python

$(VENV)/.installed: requirements/dev.txt requirements/uv.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/uv.txt
	$(UV_INSTALL) --compile-bytecode --require-hashes -r requirements/dev.txt
	$(UV_INSTALL) --no-deps -e .
	touch $@

# After changing a dependency in pyproject.toml: re-resolve the locks (they share the runtime
# versions) and commit them. `make lock UPGRADE=--upgrade` moves every package to its newest release.
COMPILE := $(BIN)/uv pip compile --generate-hashes --universal --python-version 3.11 --quiet --no-header $(UPGRADE)
LOCK := $(COMPILE) pyproject.toml

lock: $(VENV)/.installed
	$(LOCK) -o requirements/runtime.txt
	$(LOCK) --extra sinks -c requirements/runtime.txt -o requirements/sinks.txt
	$(LOCK) --extra dev -c requirements/runtime.txt -o requirements/dev.txt
	echo uv | $(COMPILE) - -c requirements/dev.txt -o requirements/uv.txt

# The edge's hot modules compiled by mypyc into edge/_native/ (edge/loader.py says why and when used);
# always asked, as only Python knows the compiler's version: a current build is kept as it is.
native: $(VENV)/.installed
	$(BIN)/python -m edge.native

migrate: install
	$(BIN)/python -m shop.migrate

seed: migrate
	$(BIN)/python -m shop.seed

# Packages held to mypy --strict (every package, once its first version has landed).
TYPED := kit shop edge payment_gateways devsinks svc_auth svc_notify svc_user svc_product svc_order svc_inventory svc_discount svc_payment \
	perf/load perf/locustfile.py perf/bench_baseline.py perf/gil_profile.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(TYPED)

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Load and benchmarks (perf/README.md). `make load` drives a running stack (`make run`, limits raised):
# LOAD_PROFILE=smoke|standard|peak, LOAD_MIX=mix|catalog|checkout, LOAD_RATE='browser=100,buyer=5',
# LOAD_SCALE, LOAD_DURATION (seconds); the report lands in perf/reports/<time>/.
load: install
	$(BIN)/python -m perf.load

# The SLO smoke of CI: a stack of its own (databases *_loadci, Redis db 10, vhost shop_loadci, ports
# +15500, unless SHOP_TEST_* say otherwise), the smoke profile, any error or missed design target
# fails; the report stays in perf/reports/smoke-ci/.
load-smoke-ci: install native
	SHOP_TEST_NS=$${SHOP_TEST_NS:-loadci} SHOP_TEST_REDIS_DB=$${SHOP_TEST_REDIS_DB:-10} \
		SHOP_TEST_PORT_OFFSET=$${SHOP_TEST_PORT_OFFSET:-15500} $(BIN)/pytest -q -m load tests/e2e/test_load_smoke.py

# Hot-path benchmarks against tests/bench/baseline.json, as ratios to an in-run calibration loop;
# `make bench-baseline` re-measures and rewrites the baseline (commit it with the change that moved it).
# A regression in the first run is judged again with a second run's figures too (each case's best):
# a busy minute on shared cores does not come back, a real regression does.
BENCH := SHOP_TEST_NS=$${SHOP_TEST_NS:-bench} SHOP_TEST_REDIS_DB=$${SHOP_TEST_REDIS_DB:-13} $(BIN)/pytest -q tests/bench --benchmark-only \
	--benchmark-max-time=0.5 --benchmark-json
bench: install native
	mkdir -p perf/reports
	$(BENCH)=perf/reports/bench.json
	$(BIN)/python -m perf.bench_baseline check perf/reports/bench.json || { \
		echo "bench: measured again before judging"; \
		$(BENCH)=perf/reports/bench-again.json && \
		$(BIN)/python -m perf.bench_baseline check perf/reports/bench.json perf/reports/bench-again.json; }

bench-baseline: install native
	mkdir -p perf/reports
	$(BENCH)=perf/reports/bench.json
	$(BIN)/python -m perf.bench_baseline refresh perf/reports/bench.json
