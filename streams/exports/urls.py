"""URLs as they may be shown: credentials masked (API, CLI, logs, job errors).

A webhook URL can carry credentials: ``https://user:password@host/...``, a query parameter such
as ``?token=...``, or a path that is itself the secret (``/services/T0/B0/Xq3...``, as chat
tools issue them). `mask_url` replaces each with ``***``; the stored definition keeps the
real URL, and an update that sends the masked URL back keeps it (`streams.export_commands`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["MASK", "mask_url", "scrub"]

MASK: Final = "***"
_SECRET_NAME: Final = re.compile(
    r"token|key|secret|pass|pwd|sig|auth|credential|session|code", re.IGNORECASE
)
_SECRET_SEGMENT: Final = re.compile(r"(?=.*[A-Za-z])(?=.*[0-9])[A-Za-z0-9_\-]{16,}")


def _query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, eq, _value = item.partition("=")
        parts.append(f"{name}={MASK}" if eq and _SECRET_NAME.search(unquote(name)) else item)
    return "&".join(parts)


def _path(path: str) -> str:
    return "/".join(MASK if _SECRET_SEGMENT.fullmatch(s) else s for s in path.split("/"))


def mask_url(url: str) -> str:
    """`url` with its user info, secret-looking query values and path segments as ``***``.

    A path segment counts as secret when it has 16 or more letters, digits, '_' or '-' with
    both letters and digits; a query parameter when its name contains token, key, secret,
    pass, pwd, sig, auth, credential, session or code.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    return urlunsplit(
        (parts.scheme, netloc, _path(parts.path), _query(parts.query), parts.fragment)
    )


def scrub(text: str, url: str) -> str:
    """`text` (an error message) with `url` and its password replaced by the masked form."""
    masked = text.replace(url, mask_url(url))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        masked = masked.replace(password, MASK)
    return masked
