# One image for every Python process of the shop; docker-compose.yml picks the module to run.

# The edge's hot modules compiled by mypyc (edge/__init__.py says why): this stage has the C compiler,
# the image keeps only what it built.
FROM python:3.11 AS edge-native
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . mypy && EDGE_NATIVE=off python -m edge.native

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
 && python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. protos/*.proto
COPY --from=edge-native /app/edge/_native edge/_native
USER nobody
