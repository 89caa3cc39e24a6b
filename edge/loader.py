"""Which build of the edge's hot modules a process runs: the mypyc build in `_native/`, or the source.

The hot modules (`COMPILED`) also exist compiled to C by mypyc, built from this same source by
`make native` into `_native/` (see `edge.native`). Interpreted, CPython's per-call and per-attribute
work is most of the edge's CPU time; compiled, a proxied request costs about a quarter less
(perf/README.md). `use_native()` puts the build ahead of the source on the `edge` package's search
path, and only while it is what the source says: a digest of every `edge/*.py` (a compiled module is
built against the types of those it imports, compiled or not), the interpreter's ABI and the compiler
that built it is stored with the build, and a stale build is never run; the edge falls back to the
source, with a warning.

`use_native()` is called once, explicitly, by whatever starts the edge (`edge/__main__.py`, the test
suite), before the first hot module is imported; importing `edge` itself changes nothing.

`EDGE_NATIVE` picks: `auto` (default: the build when it is current), `off` (always the source, e.g. to
step through it in a debugger), `require` (refuse to start without a current build; the benchmark's
setting).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
import warnings
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR / "_native"
DIGEST_FILE = "SOURCES.sha256"
COMPILER = "mypy"
# Everything a request runs through. Left interpreted: what runs once (config, server, health checks)
# and `errors`, whose classes override class-level defaults per instance, which native classes do not.
COMPILED = (
    "accesslog",
    "call",
    "connection",
    "cors",
    "exchange",
    "forwarding",
    "headers",
    "jwt",
    "limits",
    "metrics",
    "peers",
    "protocol",
    "proxy",
    "ratelimit",
    "routes",
    "spans",
    "streaming",
    "upstream",
)
NATIVE_MODES = ("auto", "off", "require")

_chosen: list[str] | None = None


class NativeBuildUnusable(ImportError):
    """EDGE_NATIVE=require, and the compiled modules are missing or older than their source."""


def compiler_version() -> str:
    """The installed compiler, as the build records it ("mypy 1.2.3"); mypy is a build-time dependency."""
    return f"{COMPILER} {importlib.metadata.version(COMPILER)}"


def sources_digest(package_dir: Path, compiler: str) -> str:
    """What a build is made from: every source file of the package, the interpreter's ABI, the compiler."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode() + b"\0" + compiler.encode())
    for path in sorted(package_dir.glob("*.py")):
        digest.update(b"\0" + path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp(package_dir: Path, compiler: str) -> str:
    """The contents of a build's DIGEST_FILE: the digest, then the compiler that built it."""
    return f"{sources_digest(package_dir, compiler)}\n{compiler}\n"


def is_current(package_dir: Path, native_dir: Path, compiler: str | None = None) -> bool | None:
    """Whether the build in `native_dir` is what the source says (None: there is none).

    `compiler` None takes the one the build recorded: the running edge need not have mypy installed,
    while `make native` passes the installed one, so a new compiler means a new build.
    """
    digest_file = native_dir / DIGEST_FILE
    if not digest_file.is_file():
        return None
    built, _, recorded = digest_file.read_text().partition("\n")
    return built.strip() == sources_digest(package_dir, compiler or recorded.strip())


def native_search_path(package_dir: Path, native_dir: Path, mode: str) -> list[str]:
    """The folders to search for the package's modules before its own: the build's, when it is current."""
    if mode not in NATIVE_MODES:
        raise ValueError(f"EDGE_NATIVE must be one of {', '.join(NATIVE_MODES)}, got {mode!r}")
    if mode == "off":
        return []
    current = is_current(package_dir, native_dir)
    if current:
        return [str(native_dir)]
    why = "not built" if current is None else "older than their source"
    if mode == "require":
        raise NativeBuildUnusable(f"the edge's compiled modules are {why}: run `make native`")
    if current is not None:
        warnings.warn(
            f"the edge's compiled modules are {why}; running the source (slower): run `make native`",
            RuntimeWarning,
            stacklevel=2,
        )
    return []


def use_native(mode: str) -> bool:
    """Run the compiled build from now on when `mode` (EDGE_NATIVE: auto, off or require) and its
    currency allow; whether it does. Once per process, before any hot module is imported: one imported
    already stays what it is."""
    global _chosen
    if _chosen is None:
        loaded = [name for name in COMPILED if f"edge.{name}" in sys.modules]
        if loaded:
            raise RuntimeError(f"use_native() must run before edge.{loaded[0]} is imported")
        _chosen = native_search_path(PACKAGE_DIR, NATIVE_DIR, mode)
        edge = sys.modules[__package__ or "edge"]
        edge.__path__[:0] = _chosen
    return bool(_chosen)


def runs_compiled() -> bool:
    """Whether this process runs the compiled build (said in the log at start)."""
    return bool(_chosen)
