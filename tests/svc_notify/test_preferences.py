"""Which channels a message may use, from the preferences svc_user announces; how retries back off;
where a push may go."""

from __future__ import annotations

import msgspec
import pytest

from kit import settings
from svc_notify import config, preferences
from svc_notify.config import ChannelPolicy
from svc_notify.dispatch import backoff

pytestmark = pytest.mark.offline


def prefs(**document: object) -> preferences.Preferences:
    return preferences.decode(msgspec.json.encode(document).decode())


@pytest.mark.parametrize(
    ("document", "kind", "wanted"),
    [
        ({}, "orderUpdates", ["email"]),  # svc_user's defaults: email only
        ({"notifications": {"sms": True, "push": True}}, "orderUpdates", ["email", "sms", "push"]),
        ({"notifications": {"sms": True, "payment": {"sms": False}}}, "payment", ["email"]),
        ({"notifications": {"sms": True, "payment": {"sms": False}}}, "orderUpdates", ["email", "sms"]),
        ({"notifications": {"email": False, "push": True}}, "orderUpdates", ["push"]),
        # Security always goes by email; the user still chooses the other channels.
        ({"notifications": {"email": False, "sms": True}}, "security", ["email", "sms"]),
        ({"notifications": {"security": {"email": False}}}, "security", ["email"]),
        # Marketing needs consent on top of the channels.
        ({"notifications": {"sms": True}}, "marketing", []),
        ({"notifications": {"sms": True}, "marketingConsent": True}, "marketing", ["email", "sms"]),
    ],
)
def test_a_message_uses_the_channels_both_switches_allow(
    document: dict[str, object], kind: str, wanted: list[str]
) -> None:
    assert preferences.wanted_channels(prefs(**document), kind) == wanted


def test_the_language_chooses_the_locale_and_unknown_ones_take_the_default() -> None:
    assert preferences.locale_of(prefs(language="vi"), "en") == "vi"
    assert preferences.locale_of(prefs(language="fr"), "en") == "en"
    assert preferences.locale_of(preferences.DEFAULTS, "vi") == "vi"


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    policy = ChannelPolicy(
        concurrency=1, rate_per_second=1, max_attempts=6, retry_seconds=10, retry_cap_seconds=60
    )
    for attempt, ceiling in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delays = {backoff(policy, attempt) for _ in range(200)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays) and len(delays) > 100
    assert backoff(policy, 1, provider_after=120) == 120  # the provider's Retry-After, when longer


def test_outside_dev_a_push_endpoint_must_be_a_known_push_service() -> None:
    known = config.NotifyConfig.read(
        settings.Env(
            {
                "SHOP_ENV": "production",
                "TWILIO_ACCOUNT_SID": "AC1",
                "TWILIO_AUTH_TOKEN": "t",
                "TWILIO_FROM": "MG1",
                "NOTIFY_VAPID_PRIVATE_KEY": "k",
            }
        )
    )
    assert config.push_host_allowed(known, "fcm.googleapis.com")
    assert config.push_host_allowed(known, "updates.push.services.mozilla.com")
    assert not config.push_host_allowed(known, "169.254.169.254")
    assert not config.push_host_allowed(known, "evilfcm.googleapis.com.attacker.test")
    assert config.push_host_allowed(config.NotifyConfig.read(settings.Env({"SHOP_ENV": "dev"})), "127.0.0.1")
    with pytest.raises(ValueError, match="NOTIFY_VAPID_PRIVATE_KEY"):
        config.NotifyConfig.read(settings.Env({"SHOP_ENV": "production"}))
