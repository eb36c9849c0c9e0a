"""Relay global ids: opaque to callers, `base64url("<SOURCE>:<native id>")` inside."""

from __future__ import annotations

import base64
import binascii

from gateway.errors import BadUserInput
from gateway.model import Source


def encode_global_id(source: Source, native_id: str) -> str:
    raw = f"{source.value}:{native_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_global_id(global_id: str, *, field: str = "id") -> tuple[Source, str]:
    try:
        padded = global_id + "=" * (-len(global_id) % 4)
        source_name, sep, native_id = base64.urlsafe_b64decode(padded).decode().partition(":")
        if sep and native_id:
            return Source(source_name), native_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadUserInput(f"{field}: {global_id!r} is not a live event id", field=field, reason="MALFORMED_ID")
