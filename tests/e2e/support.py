"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

from typing import Any


def demo_leaf(tree: list[dict[str, Any]]) -> dict[str, Any]:
    """A third-level category of the demo catalog; other tests may add childless roots beside it."""
    return next(grandchild for root in tree for child in root["children"] for grandchild in child["children"])
