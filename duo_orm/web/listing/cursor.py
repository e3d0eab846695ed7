"""Opaque, tamper-evident keyset cursors.

A cursor names the row a page starts after (or ends before) by its sort keys. It is
JSON, base64url-encoded, followed by an HMAC-SHA256 tag: a client can read it but
not forge or edit one, so the keys that reach the WHERE clause are keys this server
handed out (and are still parsed by column type and bound as parameters).

The key: ``Listing(secret=...)``, else the ``DUO_ORM_CURSOR_SECRET`` environment
variable, else a random key made once per process. With the random key a cursor
only works in the process that made it: behind several workers or after a restart
it is answered with a 400 asking the client to start again, so set the variable
(the same value in every worker) in production.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from typing import Literal

from ...exceptions import InvalidQueryError

__all__ = ["EXPIRED", "MAX_CURSOR_CHARS", "Cursor", "cursor_key", "sign", "verify"]

ENVIRONMENT_VARIABLE = "DUO_ORM_CURSOR_SECRET"
MAX_CURSOR_CHARS = 1024  # a longer one was not made here
EXPIRED = "cursor is invalid or expired: start again from the first page (cursor= empty)"
_TAG_BYTES = 16
_VERSION = 1
_process_key = secrets.token_bytes(32)
_warned = False

logger = logging.getLogger("duo_orm.web")

Direction = Literal["after", "before"]


@dataclass(frozen=True)
class Cursor:
    """Where a keyset page starts: after (or before) the row with these keys, in this sort."""

    direction: Direction
    sort: str  # the normalised sort the keys belong to, e.g. "-created_at,id"
    keys: tuple[str, ...]  # each sort key's value as text (values.write)


def cursor_key(secret: str | bytes | None) -> bytes:
    """The signing key: the given secret, the environment's, or this process's own."""
    global _warned
    if secret is None:
        secret = os.environ.get(ENVIRONMENT_VARIABLE) or None
    if secret is None:
        if not _warned:
            _warned = True
            logger.warning(
                "Cursors are signed with a per-process key: they fail in other worker "
                "processes and after a restart. Set %s to share one.",
                ENVIRONMENT_VARIABLE,
            )
        return _process_key
    return secret.encode() if isinstance(secret, str) else secret


def sign(cursor: Cursor, key: bytes, context: str) -> str:
    """``cursor`` as an opaque token; ``context`` (the model's name) is signed with it."""
    payload = json.dumps(
        [_VERSION, cursor.direction, cursor.sort, list(cursor.keys)], separators=(",", ":")
    ).encode()
    return f"{_b64(payload)}.{_b64(_tag(key, context, payload))}"


def verify(token: str, key: bytes, context: str) -> Cursor:
    """The cursor in ``token``; ``InvalidQueryError`` (400) for any token not made here."""
    bad = InvalidQueryError(EXPIRED)
    if len(token) > MAX_CURSOR_CHARS or token.count(".") != 1:
        raise bad
    encoded, tag = token.split(".")
    try:
        payload, given = _unb64(encoded), _unb64(tag)
    except (binascii.Error, ValueError):
        raise bad from None
    if not hmac.compare_digest(given, _tag(key, context, payload)):
        raise bad
    version, direction, sort, keys = json.loads(payload)  # ours: signed, so well-formed
    if version != _VERSION:
        raise bad
    return Cursor(direction, sort, tuple(keys))


def _tag(key: bytes, context: str, payload: bytes) -> bytes:
    message = context.encode() + b"\x00" + payload
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
