"""The dev SMS sink speaks Twilio's Messages API: basic auth, Twilio's errors, segments, faults."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest

from devsinks import sms
from kit.settings import Env
from svc_notify import twilio
from tests.support import serve

pytestmark = pytest.mark.offline

CONFIG = twilio.TwilioConfig.read(Env())
PATH = f"/2010-04-01/Accounts/{CONFIG.account_sid}/Messages.json"


@pytest.fixture
async def sink() -> AsyncIterator[httpx.AsyncClient]:
    async with serve(sms.make_app()) as client:
        yield client


def auth(sid: str = CONFIG.account_sid, token: str = CONFIG.auth_token.reveal()) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


async def test_a_message_is_accepted_as_twilio_answers_and_listed_with_its_parts(
    sink: httpx.AsyncClient,
) -> None:
    form = {"To": "+84912345678", "From": twilio.DEV_FROM, "Body": "Đơn hàng " + "a" * 70}
    sent = await sink.post(PATH, data=form, headers=auth())
    assert sent.status_code == 201, sent.text
    resource = sent.json()
    assert resource["sid"].startswith("SM") and len(resource["sid"]) == 34
    assert (resource["status"], resource["num_segments"], resource["to"]) == ("queued", "2", "+84912345678")
    [listed] = (await sink.get("/api/messages", params={"to": "+84912345678"})).json()
    assert (listed["sid"], listed["encoding"], listed["segments"]) == (resource["sid"], "UCS-2", 2)


@pytest.mark.parametrize(
    ("form", "headers", "status", "code"),
    [
        ({"To": "+84912345678", "From": "x", "Body": "hi"}, auth(token="wrong"), 401, 20003),
        ({"To": "+84912345678", "From": "x", "Body": "hi"}, {}, 401, 20003),
        ({"To": "0912345678", "From": "x", "Body": "hi"}, auth(), 400, 21211),
        ({"To": "+84912345678", "Body": "hi"}, auth(), 400, 21603),
        ({"To": "+84912345678", "From": "x", "Body": ""}, auth(), 400, 21602),
    ],
)
async def test_requests_twilio_would_refuse_get_twilios_errors(
    sink: httpx.AsyncClient, form: dict[str, str], headers: dict[str, str], status: int, code: int
) -> None:
    response = await sink.post(PATH, data=form, headers=headers)
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["status"] == status


async def test_a_fault_fails_the_next_sends_to_a_number_then_lets_one_through(
    sink: httpx.AsyncClient,
) -> None:
    phone = "+84900000001"
    assert (
        await sink.post("/api/faults", json={"to": phone, "failures": 2, "status": 500})
    ).status_code == 201
    form = {"To": phone, "From": twilio.DEV_FROM, "Body": "hi"}
    statuses = [(await sink.post(PATH, data=form, headers=auth())).status_code for _ in range(3)]
    assert statuses == [500, 500, 201]
    assert len((await sink.get("/api/messages", params={"to": phone})).json()) == 1
