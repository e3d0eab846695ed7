"""Values quoted in error messages, cut short: a client's 60 KB input or a 10,000-digit
key must not come back whole (``repr()`` even refuses ints over 4,300 digits)."""

from __future__ import annotations

from typing import Any


def shown(value: Any, limit: int = 100) -> str:
    if type(value) is int and value.bit_length() > 64:
        return f"<an int of {value.bit_length()} bits>"
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."
