"""Edits the tuning tests make to a copy of a rendered Experiment."""

from __future__ import annotations


def setting(items: list[dict], name: str, value: str) -> None:
    """Set (or add) one name/value entry of an algorithmSettings list."""
    for item in items:
        if item["name"] == name:
            item["value"] = value
            return
    items.append({"name": name, "value": value})
