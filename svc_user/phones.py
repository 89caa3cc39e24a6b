"""Phone numbers as people type them (`0912 345 678`, `+84 912-345-678`), stored in E.164.

Parsing and validation are Google's libphonenumber rules (the `phonenumbers` package): a national form
is read in the country it is given for (the user's preferred country, VN unless they chose another; an
address's own country), an international form anywhere. A number the rules do not know as valid is
refused, so what is stored can be dialled and compared.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_COUNTRY = "VN"


def to_e164(value: str, country: str = DEFAULT_COUNTRY) -> str | None:
    """`0912345678` in VN -> `+84912345678`; None when `value` is not a valid number there."""
    try:
        number = phonenumbers.parse(value, country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def expected(country: str = DEFAULT_COUNTRY) -> str:
    """What a refused number should have looked like, with an example of the country's national form."""
    example = phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return "must be a valid phone number in international form, such as +84912345678"
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    return f"must be a valid phone number, such as {national} in {country} or {international}"
