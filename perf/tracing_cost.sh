#!/usr/bin/env bash
# What tracing costs: svc_product alone, cached product detail at saturation and at a fixed rate
# (perf/catalog.py --direct --only detail), with tracing off, at 1% and at 100%, then off again; the
# spans go to a trace sink of its own. Needs the demo catalog (`make seed`) and wrk.
#
#   perf/tracing_cost.sh                      # the dev database (make run's), Redis db 0
#   PRODUCT_DATABASE_URL=... REDIS_URL=... perf/tracing_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export LOG_LEVEL=WARNING PRODUCT_PORT=${PRODUCT_PORT:-47004} INVENTORY_URL=http://127.0.0.1:47999
TRACESINK_PORT=47318 .venv/bin/python -m devsinks.traces >/dev/null 2>&1 &
sink=$!
trap 'kill $sink' EXIT
run() {
  local label=$1
  shift
  env "$@" .venv/bin/python -m svc_product >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "localhost:$PRODUCT_PORT/health/live" >/dev/null && break; sleep 0.2; done
  echo "== tracing $label"
  .venv/bin/python perf/catalog.py --direct --base "http://127.0.0.1:$PRODUCT_PORT" --only detail --duration 8 | grep "| detail" | sort -u
  kill $pid
  wait $pid 2>/dev/null || true
}
run off OTEL_EXPORTER_OTLP_ENDPOINT=
run 1% OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:47318 OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.01
run 100% OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:47318 OTEL_TRACES_SAMPLER=parentbased_always_on
run off OTEL_EXPORTER_OTLP_ENDPOINT=
uptime
