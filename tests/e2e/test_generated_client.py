"""A client generated from the edge's document (openapi-python-client) works: proof it is usable, not
only valid. Generated into a temporary folder at test time (about 2 s), never committed."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import orjson
import pytest

from tests.e2e.support import mailed_token, new_email, whole_document

pytestmark = pytest.mark.e2e

PACKAGE = "shop_client"


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def test_a_generated_client_signs_up_logs_in_and_lists_products(
    stack: dict[str, str], edge: httpx.AsyncClient, mail: httpx.AsyncClient, generated: Path
) -> None:
    spec = generated / "openapi.json"
    spec.write_bytes(orjson.dumps(await whole_document(edge)))
    tool = Path(sys.executable).with_name("openapi-python-client")
    run = await asyncio.create_subprocess_exec(
        str(tool),
        "generate",
        f"--path={spec}",
        "--meta=none",
        f"--output-path={generated / PACKAGE}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await run.communicate())[0].decode()
    assert run.returncode == 0, output
    models, client = module("models"), module("client")

    anonymous = client.Client(base_url=stack["edge"])
    email, password = new_email(), "Generated1!"
    register = module("api.svc_auth.register")
    created = await register.asyncio_detailed(
        client=anonymous, body=models.RegisterRequest(email=email, password=password, full_name="Gen")
    )
    assert created.status_code == 201 and isinstance(created.parsed, models.RegisterResponse)
    verify = module("api.svc_auth.verify_email")
    token = await mailed_token(mail, email)
    verified = await verify.asyncio_detailed(
        client=anonymous, body=models.VerifyEmailRequest(email=email, token=token)
    )
    assert verified.status_code == 200
    pair = await module("api.svc_auth.login").asyncio(
        client=anonymous, body=models.LoginRequest(email=email, password=password)
    )
    assert isinstance(pair, models.TokenPair) and pair.token_type == "Bearer"

    signed_in = client.AuthenticatedClient(base_url=stack["edge"], token=pair.access_token)
    me = await module("api.svc_auth.me").asyncio(client=signed_in)
    assert isinstance(me, models.Me) and me.email == email
    page = await module("api.svc_product.list_products").asyncio(
        client=signed_in, page_size=5, sort_by=models.ListProductsSortByType0.PRICE, sort_order="asc"
    )
    assert isinstance(page, models.ProductPage) and len(page.items) == 5 and page.total_count >= 5
    prices = [item.price for item in page.items]
    assert prices == sorted(prices)
