"""Whom a TLS connection of dcwatch trusts: the system's CAs, plus the bundle the config names (`ca_file`)."""

from __future__ import annotations

import ssl
from functools import lru_cache

X509_V_FLAG_NO_CHECK_TIME = 0x200000  # not in ssl.VerifyFlags; OpenSSL's own value


@lru_cache(maxsize=32)
def tls_context(ca_file: str | None, check_time: bool = True) -> ssl.SSLContext:
    """System CAs plus the config's own bundle, built once per bundle: loading CAs costs milliseconds.

    OSError when the bundle cannot be read; ssl.SSLError when it holds no certificate."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not check_time:
        context.verify_flags |= X509_V_FLAG_NO_CHECK_TIME
    return context
