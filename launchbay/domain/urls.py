"""URLs shown to people (logs, `--print-config`, errors) with their secrets left out: the
one redaction of a URL, used wherever one is shown."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "***"
# Query parameters that carry a secret (libpq's password and sslpassword, tokens, keys).
SECRET_PARAMETERS = frozenset({"password", "sslpassword", "token", "key", "secret", "sig"})


def redacted(url: str) -> str:
    """The URL with its password, and the value of every query parameter that names a
    secret, replaced by ***; the rest exactly as written (`sqlite:////abs/path` too)."""
    parts = urlsplit(url)
    if parts.password is not None:
        userinfo, _, host = parts.netloc.rpartition("@")
        masked = f"{userinfo.partition(':')[0]}:{REDACTED}@{host}"
        url = url.replace(f"//{parts.netloc}", f"//{masked}", 1)
    head, mark, rest = url.partition("?")
    if not mark:
        return url
    query, hash_mark, fragment = rest.partition("#")
    pairs = [
        (name, REDACTED if name.lower() in SECRET_PARAMETERS else value)
        for name, value in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{head}?{urlencode(pairs, safe='*')}{hash_mark}{fragment}"


def origin_only(url: str) -> str:
    """Scheme and host, nothing else: for URLs whose path is their secret (a Slack
    webhook's), and which may carry credentials besides."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, f"/{REDACTED}" if parts.path else "", "", ""))
