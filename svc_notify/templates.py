"""Templates: `{placeholder}` text rendered with str.format_map, and the rules an edit must follow."""

from __future__ import annotations

import string
from collections.abc import Collection, Mapping

_parser = string.Formatter()

# What a preview fills each placeholder with: realistic lengths, so the SMS count means something.
SAMPLES = {
    "fullName": "Nguyễn Văn An",
    "email": "an.nguyen@example.com",
    "link": "https://shop.example/orders/3f0c6b1e-8d1a-4c57-9e0a-2b7d9f4e6a11",
    "expiresAt": "2026-11-26 09:30 UTC",
    "orderNumber": "ORD-20261125-0001",
    "totalAmount": "1,250,000 VND",
    "amount": "300,000 VND",
    "reason": "the payment did not go through",
    "productName": "Ấm đun nước 1.7L",
    "available": "3",
    "threshold": "5",
}


class _KeepUnknown(dict[str, str]):
    """Leaves a placeholder nobody supplies as written, so one odd template never blocks a delivery."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(text: str, values: Mapping[str, str]) -> str:
    return text.format_map(_KeepUnknown(values))


def unsupported_placeholders(text: str, supported: Collection[str]) -> list[str]:
    """The placeholders in `text` outside `supported`; raises ValueError when `text` is not a template.

    Only plain `{name}` is allowed: attribute and index lookups (`{email.__class__}`), conversions and
    format specs would let an edited template reach into the values' Python objects.
    """
    try:
        fields = [(field, spec, conversion) for _, field, spec, conversion in _parser.parse(text)]
    except ValueError as exc:
        raise ValueError(f"{exc}; write {{{{ and }}}} for a literal brace") from None
    unknown: dict[str, None] = {}  # ordered and without repeats
    for field, spec, conversion in fields:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError("Only plain {name} placeholders are allowed, without '.', '[', '!' or ':'")
        if field not in supported:
            unknown[field] = None
    return list(unknown)
