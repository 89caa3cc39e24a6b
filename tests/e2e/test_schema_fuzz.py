"""Schemathesis against the whole stack through the edge: every operation of the edge's document.

The run fails on any 5xx, on a status code or header the document does not declare, on a body that does
not match its schema, and on invalid input that was accepted. Protected operations are called with
tokens of fresh Admin accounts made for the run (Admin passes every role check, so the fuzzing reaches
the handlers). Nothing is excluded: ids in paths are random UUIDs that name nothing that exists, and
what acts on "me" (cart, addresses, avatar, preferences) acts on the fuzzing accounts only.

`make test` runs a short pass (`SHOP_FUZZ_EXAMPLES`, default 5 cases per operation and phase);
`make fuzz` a long one.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import bearer, mailed_token, new_email
from tests.stack import ROOT
from tests.support import eventually

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("SHOP_FUZZ_EXAMPLES", "5"))
# Each is its own user for the edge's per-user limit (tests/e2e/fuzz_hooks.py).
ACCOUNTS = 12
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection"
)


async def admin_account(edge: httpx.AsyncClient, mail: httpx.AsyncClient, admin: dict[str, str]) -> str:
    """A new verified account with the Admin role; its access token."""
    email, password = new_email(), "Fuzz123!x"
    created = await edge.post(
        "/api/auth/register", json={"email": email, "password": password, "fullName": "Fuzz"}
    )
    assert created.status_code == 201, created.text
    verified = await edge.post(
        "/api/auth/verify-email", json={"email": email, "token": await mailed_token(mail, email)}
    )
    assert verified.status_code == 200, verified.text
    path = f"/api/auth/users/{created.json()['userId']}/roles"
    assert (await edge.put(path, json={"roles": ["User", "Admin"]}, headers=admin)).status_code == 200
    login = await edge.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return str(login.json()["accessToken"])


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    stack: dict[str, str], edge: httpx.AsyncClient, mail: httpx.AsyncClient, tmp_path: Path
) -> None:
    async def complete() -> bool:
        return (await edge.get("/openapi.json")).json()["x-missing"] == []

    await eventually(complete)
    seed = await edge.post("/api/auth/login", json={"email": "admin@shop.local", "password": "Admin123!"})
    admin = bearer(seed.json()["accessToken"])
    tokens = [await admin_account(edge, mail, admin) for _ in range(ACCOUNTS)]
    report = tmp_path / "schemathesis.json"
    run = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{stack['edge']}/openapi.json",
        f"--checks={CHECKS}",
        f"--max-examples={EXAMPLES}",
        "--phases=examples,coverage,fuzzing",
        # One worker: hypothesis describes its filters with ast.parse, which CPython 3.11 can fail on
        # from several threads at once ("AST constructor recursion depth mismatch").
        "--workers=1",
        "--seed=12",
        "--no-color",
        "--report=json",
        f"--report-json-path={report}",
        "--suppress-health-check=all",
        # Its working folder takes its cache of found crashes: a temporary one, not the repository.
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
            "SHOP_FUZZ_TOKENS": ",".join(tokens),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await run.communicate())[0].decode(errors="replace")
    # Shown with -s (make fuzz): each phase's time, then the summary (operations, cases, failures).
    print(*[line for line in output.splitlines() if "(in " in line], output[-3000:], sep="\n")
    assert run.returncode == 0, output[-12000:]
