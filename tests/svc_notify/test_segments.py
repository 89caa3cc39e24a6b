"""How many SMS a text costs, as carriers count it (GSM 03.38 and 03.40)."""

from __future__ import annotations

import pytest

from svc_notify.segments import Segments, count

pytestmark = pytest.mark.offline


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Segments("GSM-7", 0, 1)),
        ("a" * 160, Segments("GSM-7", 160, 1)),
        ("a" * 161, Segments("GSM-7", 161, 2)),
        ("a" * 306, Segments("GSM-7", 306, 2)),
        ("a" * 307, Segments("GSM-7", 307, 3)),
        # Extension characters take two septets each.
        ("€" * 80, Segments("GSM-7", 160, 1)),
        ("{" * 81, Segments("GSM-7", 162, 2)),
        # ... and are never split between parts: 306 septets, but the euro moves to part 2.
        ("a" * 152 + "€" + "a" * 152, Segments("GSM-7", 306, 3)),
        ("Shop: don hang ORD-1 da duoc xac nhan", Segments("GSM-7", 37, 1)),
        # One character outside GSM-7 makes it all UCS-2: Vietnamese with its diacritics.
        ("ệ" * 70, Segments("UCS-2", 70, 1)),
        ("Đơn hàng " + "a" * 62, Segments("UCS-2", 71, 2)),
        ("ệ" * 134, Segments("UCS-2", 134, 2)),
        # A character beyond the BMP is a surrogate pair: two units, kept in one part.
        ("😀" * 35, Segments("UCS-2", 70, 1)),
        ("a" * 66 + "😀" + "a" * 66, Segments("UCS-2", 134, 3)),
    ],
)
def test_segments_are_counted_as_carriers_do(text: str, expected: Segments) -> None:
    assert count(text) == expected
