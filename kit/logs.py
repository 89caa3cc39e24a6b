"""JSON logs on stderr, one object per line, with the service name, the current request id and trace.

Every line is JSON, granian's own included (`granian_config`, given to granian's server), and a line
written while a request, a gRPC call or an event is handled carries its `requestId` and `traceId`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson

from kit import tracing

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if rid := tracing.request_id.get():
            entry["requestId"] = rid
        if parent := tracing.traceparent.get():
            # 00-<trace id>-<span id>-<flags>
            entry["traceId"] = parent[3:35]
            entry["spanId"] = parent[36:52]
        entry.update((k, v) for k, v in record.__dict__.items() if k not in _STANDARD)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def granian_config(service: str, level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` for granian's server and workers: its loggers through ours."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter, "service": service}},
        "handlers": {"console": handler, "access": handler},
        "loggers": {
            "_granian": {"handlers": ["console"], "level": level, "propagate": False},
            "granian.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


def setup(service: str, level: str = "INFO") -> None:
    """Route every logger, ours and the libraries', through one JSON handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
