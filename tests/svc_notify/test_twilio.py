"""Twilio's request signature and its configuration."""

from __future__ import annotations

import pytest

from kit.settings import Env
from svc_notify import twilio

pytestmark = pytest.mark.offline

# Twilio's own published test vector for X-Twilio-Signature.
TOKEN = "1c892n40nd03kdnc0112slzkl3091j20"
URL = "http://www.postbin.org/1ed898x"
PARAMS = {
    "AccountSid": "AC9a9f9392lad99kla0sklakjs90j092j3",
    "ApiVersion": "2010-04-01",
    "CallSid": "CAd800bb12c0426a7ea4230e492fef2a4f",
    "CallStatus": "ringing",
    "Called": "+15306384866",
    "CalledCity": "OAKLAND",
    "CalledCountry": "US",
    "CalledState": "CA",
    "CalledZip": "94612",
    "Caller": "+15306666666",
    "CallerCity": "SOUTH LAKE TAHOE",
    "CallerCountry": "US",
    "CallerName": "CA Wireless Call",
    "CallerState": "CA",
    "CallerZip": "89449",
    "Direction": "inbound",
    "From": "+15306666666",
    "FromCity": "SOUTH LAKE TAHOE",
    "FromCountry": "US",
    "FromState": "CA",
    "FromZip": "89449",
    "To": "+15306384866",
    "ToCity": "OAKLAND",
    "ToCountry": "US",
    "ToState": "CA",
    "ToZip": "94612",
}
EXPECTED = "fF+xx6dTinOaCdZ0aIeNkHr/ZAA="


def test_the_signature_matches_twilios_published_example() -> None:
    assert twilio.signature(TOKEN, URL, PARAMS.items()) == EXPECTED
    assert twilio.signed_by(TOKEN, URL, reversed(list(PARAMS.items())), EXPECTED)


@pytest.mark.parametrize(
    ("url", "params", "token"),
    [
        (URL + "?id=1", PARAMS, TOKEN),  # another URL
        (URL, {**PARAMS, "CallStatus": "completed"}, TOKEN),  # a changed parameter
        (URL, {**PARAMS, "Extra": ""}, TOKEN),  # an added one
        (URL, PARAMS, "another-token"),
    ],
)
def test_any_change_breaks_the_signature(url: str, params: dict[str, str], token: str) -> None:
    assert not twilio.signed_by(token, url, params.items(), EXPECTED)


def test_dev_defaults_point_at_the_sink_and_production_needs_credentials() -> None:
    dev = twilio.TwilioConfig.read(Env({"SHOP_ENV": "dev", "SMSSINK_PORT": "18026"}))
    assert (
        dev.messages_url
        == f"http://127.0.0.1:18026/2010-04-01/Accounts/{twilio.DEV_ACCOUNT_SID}/Messages.json"
    )
    with pytest.raises(ValueError, match="TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM"):
        twilio.TwilioConfig.read(Env({"SHOP_ENV": "production"}))
    real = twilio.TwilioConfig.read(
        Env(
            {
                "SHOP_ENV": "production",
                "TWILIO_ACCOUNT_SID": "AC1",
                "TWILIO_AUTH_TOKEN": "real-token-0123",
                "TWILIO_FROM": "MG1",
            }
        )
    )
    assert real.api_url == "https://api.twilio.com" and "real-token" not in repr(real)
