"""Requests and responses of svc_user, camelCase on the wire.

Request Structs list only what a caller may set: `id`, `email`, roles, timestamps and the avatar URL are
not fields of any of them, so a body that carries one is refused with a 400 naming it (mass assignment).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import msgspec

from kit.http import Model
from svc_user import phones

FullName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Line = Annotated[str, msgspec.Meta(max_length=200)]
Place = Annotated[str, msgspec.Meta(max_length=100)]
PostalCode = Annotated[str, msgspec.Meta(max_length=20, pattern=r"^[A-Za-z0-9 \-]*$")]
Country = Annotated[str, msgspec.Meta(min_length=2, max_length=2)]

# ISO 3166-1 alpha-2, the officially assigned codes.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
    BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER
    ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID
    IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV
    LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR
    NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC
    VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
COUNTRIES = frozenset(_COUNTRY_CODES.split())


def _country(value: str) -> str:
    value = value.upper()
    if value not in COUNTRIES:
        raise ValueError("country: must be an ISO 3166-1 alpha-2 code such as VN")
    return value


def _required(field: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError(f"{field}: must not be blank")
    return value


def _optional(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


class ProfilePatch(Model):
    """The personal fields a user may change; an absent field stays as it is, `null` clears it.

    `phone` is read in the user's preferred country, so it is normalised by the handler (svc_user.phones).
    """

    full_name: FullName | msgspec.UnsetType = msgspec.UNSET
    phone: Phone | msgspec.UnsetType | None = msgspec.UNSET
    date_of_birth: date | msgspec.UnsetType | None = msgspec.UNSET

    def __post_init__(self) -> None:
        if isinstance(self.full_name, str):
            self.full_name = _required("fullName", self.full_name)
        if isinstance(self.phone, str):
            self.phone = _required("phone", self.phone)
        if isinstance(self.date_of_birth, date) and not (
            date(1900, 1, 1) <= self.date_of_birth < datetime.now(UTC).date()
        ):
            raise ValueError("dateOfBirth: must be a past date after 1900-01-01")


Language = Literal["vi", "en"]
Currency = Literal["VND", "USD"]


class Channels(Model):
    """Which channels one kind of message may use."""

    email: bool = True
    sms: bool = True
    push: bool = True


class Notifications(Model):
    """Opt-in per channel (`email`, `sms`, `push`), then per kind of message which of them it may use.

    A message goes out on a channel only when both allow it, so turning SMS off turns it off for every
    kind. Security messages (verification, password) always go by email, whatever this says; marketing
    also needs `marketingConsent`.
    """

    email: bool = True
    sms: bool = False
    push: bool = False
    order_updates: Channels = msgspec.field(default_factory=Channels)
    payment: Channels = msgspec.field(default_factory=Channels)
    security: Channels = msgspec.field(default_factory=Channels)
    marketing: Channels = msgspec.field(default_factory=Channels)


class Preferences(Model):
    """The whole preferences document: `PUT` replaces it, omitted fields take their defaults.

    Marketing consent defaults to false: consent is never assumed.
    """

    language: Language = "vi"
    currency: Currency = "VND"
    notifications: Notifications = msgspec.field(default_factory=Notifications)
    marketing_consent: bool = False
    # Where a phone number written in national form (0912 345 678) is read.
    country: Country = phones.DEFAULT_COUNTRY

    def __post_init__(self) -> None:
        self.country = _country(self.country)


class Profile(Model):
    id: uuid.UUID
    email: str
    full_name: str
    phone: str | None
    date_of_birth: date | None
    avatar_url: str | None
    preferences: Preferences
    created_at: datetime
    updated_at: datetime


class AddressInput(Model):
    """A shipping address as `POST` creates it and `PUT` replaces it.

    `isDefault: true` makes it the default; omitted, a new address is the default only when it is the
    first, and an existing one keeps its flag. The default cannot be unset, only moved to another.
    """

    full_name: FullName
    phone: Phone
    line1: Line
    city: Place
    country: Country
    line2: Line | None = None
    district: Place | None = None
    postal_code: PostalCode | None = None
    is_default: bool | None = None

    def __post_init__(self) -> None:
        self.full_name = _required("fullName", self.full_name)
        self.line1 = _required("line1", self.line1)
        self.city = _required("city", self.city)
        self.country = _country(self.country)
        # A national form is read in the address's own country.
        phone = phones.to_e164(self.phone, self.country)
        if phone is None:
            raise ValueError(f"phone: {phones.expected(self.country)}")
        self.phone = phone
        self.line2 = _optional(self.line2)
        self.district = _optional(self.district)
        self.postal_code = _optional(self.postal_code)


# The columns an address input sets, in the order the SQL takes them.
ADDRESS_FIELDS = ("full_name", "phone", "line1", "line2", "city", "district", "country", "postal_code")


class Address(Model):
    id: uuid.UUID
    full_name: str
    phone: str
    line1: str
    line2: str | None
    city: str
    district: str | None
    country: str
    postal_code: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime
