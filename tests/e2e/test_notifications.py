"""Notifications through the edge: a customer sees its own deliveries; only an admin reads templates."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.support import mailed_token, token
from tests.support import eventually

pytestmark = pytest.mark.e2e


async def test_a_new_customer_sees_its_verification_mail_among_its_notifications(
    edge: httpx.AsyncClient, mail: httpx.AsyncClient
) -> None:
    email, password = f"note{uuid.uuid4().hex[:12]}@shop.test", "Secret123!"
    registered = await edge.post(
        "/api/auth/register", json={"email": email, "password": password, "fullName": "Nia"}
    )
    assert registered.status_code == 201
    verification = await mailed_token(mail, email)
    assert (
        await edge.post("/api/auth/verify-email", json={"email": email, "token": verification})
    ).status_code == 200
    customer = await token(edge, email, password)

    async def delivered() -> list[dict[str, object]]:
        return (await edge.get("/api/notifications", headers=customer)).json()["items"]

    (item,) = await eventually(delivered)
    assert (item["recipient"], item["template"], item["status"]) == (email, "email-verification", "SENT")
    trimmed = await edge.get(
        "/api/notifications", params={"search": "verify", "fields": "template,status"}, headers=customer
    )
    assert trimmed.json()["items"] == [{"template": "email-verification", "status": "SENT"}]
    assert verification not in str(item["body"])  # the stored copy never holds the live token
    assert (await edge.get("/api/notifications")).status_code == 401


async def test_only_an_admin_reads_mail_templates(edge: httpx.AsyncClient) -> None:
    path = "/api/notifications/templates/email-verification"
    as_user = await edge.get(path, headers=await token(edge, "user@shop.local", "User123!"))
    assert as_user.status_code == 403 and as_user.json()["error"] == "Forbidden"
    as_admin = await edge.get(path, headers=await token(edge, "admin@shop.local", "Admin123!"))
    assert as_admin.status_code == 200 and "link" in as_admin.json()["placeholders"]
    missing = await edge.get(
        "/api/notifications/templates/nope", headers=await token(edge, "admin@shop.local", "Admin123!")
    )
    assert missing.status_code == 404
