# One image for every Python process of the shop; docker-compose.yml picks the module to run.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0
WORKDIR /app
COPY pyproject.toml ./
COPY kit ./kit
COPY edge ./edge
COPY devsinks ./devsinks
COPY svc_auth ./svc_auth
COPY svc_notify ./svc_notify
RUN pip install --no-cache-dir .
USER nobody
