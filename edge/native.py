"""`python -m edge.native`: compile the edge's hot modules with mypyc into `edge/_native/`.

Run by `make native` (a dependency of `make run` and `make test`); needs mypy (a dev dependency), a C
compiler and the Python headers. A build that is current (same sources, same compiler) is kept as it
is. Why and how the build is used: `edge.loader`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edge.loader import COMPILED, DIGEST_FILE, NATIVE_DIR, PACKAGE_DIR, compiler_version, is_current, stamp


def build(package_dir: Path = PACKAGE_DIR, native_dir: Path = NATIVE_DIR) -> None:
    """Compile `COMPILED` into `native_dir`, replacing what was there only once the build succeeded."""
    from mypyc.build import mypycify
    from setuptools import setup

    digest = stamp(package_dir, compiler_version())
    with tempfile.TemporaryDirectory(prefix="edge-native-") as work:
        scratch = Path(work)
        # mypy names a module after its path from the current folder: `edge/proxy.py` is edge.proxy.
        previous = Path.cwd()
        os.chdir(package_dir.parent)
        try:
            extensions = mypycify(
                [f"{package_dir.name}/{module}.py" for module in COMPILED],
                group_name=f"{package_dir.name}.native",
                target_dir=str(scratch / "c"),
            )
            setup(
                name="edge-native",
                ext_modules=extensions,
                script_args=[
                    "--quiet",
                    "build_ext",
                    f"--build-lib={scratch / 'lib'}",
                    f"--build-temp={scratch / 'obj'}",
                ],
            )
        finally:
            os.chdir(previous)
        staged = scratch / "staged"
        shutil.copytree(scratch / "lib" / package_dir.name, staged)
        (staged / DIGEST_FILE).write_text(digest)
        shutil.rmtree(native_dir, ignore_errors=True)
        shutil.move(staged, native_dir)


if __name__ == "__main__":
    if is_current(PACKAGE_DIR, NATIVE_DIR, compiler_version()):
        print(f"edge: the build in {NATIVE_DIR} is current")
    else:
        build()
        print(f"edge: {len(COMPILED)} modules compiled into {NATIVE_DIR} by {compiler_version()}")
