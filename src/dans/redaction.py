"""Database and tracking-server URLs as they may be shown: never with their secrets."""

from __future__ import annotations

import urllib.parse

HIDDEN = "***"
# Query parameters that carry a secret in database and tracking URLs.
SECRET_PARAMETERS = frozenset({"password", "passwd", "pwd", "token", "secret", "api_key", "key"})


def shown_url(url: str) -> str:
    """``url`` with the password of its user part and any secret query parameter hidden; the
    rest exactly as written."""
    parts = urllib.parse.urlsplit(url)
    shown = url
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        shown = shown.replace(parts.netloc, f"{user.partition(':')[0]}:{HIDDEN}@{host}", 1)
    if parts.query:
        query = "&".join(
            f"{name}={HIDDEN}" if name.lower() in SECRET_PARAMETERS else f"{name}={value}"
            for name, value in (pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
        )
        shown = shown.replace(f"?{parts.query}", f"?{query}", 1)
    return shown


def without_secrets(text: str, url: str) -> str:
    """``text`` (an error message, say) with ``url`` shown as :func:`shown_url` shows it and
    every secret of ``url`` hidden wherever else it appears."""
    text = text.replace(url, shown_url(url))
    for secret in _secrets(url):
        text = text.replace(secret, HIDDEN)
    return text


def _secrets(url: str) -> list[str]:
    parts = urllib.parse.urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [
        value
        for name, value in urllib.parse.parse_qsl(parts.query)
        if name.lower() in SECRET_PARAMETERS and value
    ]
    # Percent-encoded in the URL, plain once a driver decoded it: hide both.
    return [form for secret in found for form in {secret, urllib.parse.unquote(secret)}]
