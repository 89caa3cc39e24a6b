# One image for every Python process of the shop; docker-compose.yml and deploy/k8s pick the module
# to run. Layers go from what changes least to what changes most: the locked dependencies
# (requirements/, exact versions with their hashes) are installed before the code is copied, so a code
# change rebuilds only the last layers.
ARG PYTHON_IMAGE=python:3.11.7

# Build stage: the gRPC stubs (grpcio-tools) and the edge's hot modules compiled by mypyc
# (edge/loader.py says why), with the dev lock and the C compiler; the image keeps only what it built.
FROM ${PYTHON_IMAGE}-bookworm AS build
WORKDIR /app
COPY requirements/dev.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/dev.txt
COPY . .
RUN python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. protos/*.proto \
 && python -m edge.native

# The services and the edge: the runtime lock only (no compiler, test or dev tools).
FROM ${PYTHON_IMAGE}-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0
WORKDIR /app
COPY requirements/runtime.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt
COPY . .
COPY --from=build /app/protos/ protos/
COPY --from=build /app/edge/_native/ edge/_native/
USER nobody

# The dev sinks (mail, payment gateway sandbox): the runtime image plus their own locked extras.
FROM runtime AS sinks
USER root
COPY requirements/sinks.txt requirements/
RUN pip install --no-cache-dir --require-hashes -r requirements/sinks.txt
USER nobody

FROM runtime
