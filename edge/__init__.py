"""The API gateway: routes `/api/**` to the services, checks tokens, and streams bytes both ways.

The hot modules (`COMPILED`) also exist compiled to C by mypyc, built from this same source by
`make native` into `_native/` (see `edge.native`). Interpreted, CPython's per-call and per-attribute
work is most of the edge's CPU time; compiled, a proxied request costs about a quarter less
(perf/README.md). The build is put ahead of the source on this package's search path only while it
matches the source byte for byte (a digest of the sources is stored with it): a stale build is never
run; the edge falls back to the source, with a warning.

`EDGE_NATIVE` picks: `auto` (default: the build when it is current), `off` (always the source, e.g. to
step through it in a debugger), `require` (refuse to start without a current build; the benchmark's
setting).
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR / "_native"
DIGEST_FILE = "SOURCES.sha256"
# Everything a request runs through. Left interpreted: what runs once (config, server, health checks)
# and `errors`, whose classes override class-level defaults per instance, which native classes do not.
COMPILED = (
    "accesslog",
    "cors",
    "headers",
    "jwt",
    "metrics",
    "peers",
    "protocol",
    "proxy",
    "ratelimit",
    "routes",
    "upstream",
)
NATIVE_MODES = ("auto", "off", "require")


class NativeBuildUnusable(ImportError):
    """EDGE_NATIVE=require, and the compiled modules are missing or older than their source."""


def sources_digest(package_dir: Path, modules: Iterable[str] = COMPILED) -> str:
    """What the compiled modules are built from: their source files and the interpreter's ABI."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for module in modules:
        digest.update(b"\0" + module.encode() + b"\0")
        digest.update((package_dir / f"{module}.py").read_bytes())
    return digest.hexdigest()


def native_search_path(package_dir: Path, native_dir: Path, mode: str) -> list[str]:
    """The folders to search for the package's modules before its own: the build's, when it is current."""
    if mode not in NATIVE_MODES:
        raise ValueError(f"EDGE_NATIVE must be one of {', '.join(NATIVE_MODES)}, got {mode!r}")
    if mode == "off":
        return []
    digest_file = native_dir / DIGEST_FILE
    built = digest_file.read_text().strip() if digest_file.is_file() else None
    if built == sources_digest(package_dir):
        return [str(native_dir)]
    why = "not built" if built is None else "older than their source"
    if mode == "require":
        raise NativeBuildUnusable(f"the edge's compiled modules are {why}: run `make native`")
    if built is not None:
        warnings.warn(
            f"the edge's compiled modules are {why}; running the source (slower): run `make native`",
            RuntimeWarning,
            stacklevel=2,
        )
    return []


_native_path = native_search_path(PACKAGE_DIR, NATIVE_DIR, os.environ.get("EDGE_NATIVE", "auto"))
__path__[:0] = _native_path
# Whether this process runs the compiled build (said in the log at start).
RUNS_COMPILED = bool(_native_path)
