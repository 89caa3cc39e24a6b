# One image for every Python process of the shop; docker-compose.yml picks the module to run.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir . \
 && python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. --pyi_out=. protos/*.proto
USER nobody
