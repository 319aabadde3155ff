"""One Redis URL, every client: the job store, the rate limiter, ``luaq status`` and Celery's broker.

``LUAQ_REDIS_URL`` takes a plain Redis URL or a Sentinel URL:

    redis://[[user]:password@]host[:port][/db]        rediss://... (TLS)   unix:///path.sock?db=0
    redis+sentinel://[[user]:password@]host[:port][,host[:port]...][/master_name[/db]]
    sentinel://...                                     (the same; also kombu's own
                                                        ``sentinel://h1:26379;sentinel://h2:26379/0``)

For Sentinel, ``host:port`` pairs are the Sentinels (port 26379 when left out); the master
name comes from the URL's path, else ``?master_name=``, else ``LUAQ_REDIS_SENTINEL_MASTER``,
else ``mymaster``; the database from the path's second part or ``?db=``. The user and
password are the master's; ``?sentinel_password=`` is the Sentinels' own, when they ask
for one.

:func:`redis_client` turns such a URL into a redis-py client (through
``redis.sentinel.Sentinel.master_for`` for Sentinel, which asks the Sentinels for the
current primary on every new connection), and :func:`celery_broker` into the broker URL
and transport options kombu's ``sentinel://`` transport wants. A Sentinel client retries a
command that met a dropped or refused connection for up to ``FAILOVER_RETRY_SECONDS``, long
enough for the Sentinels to promote a replica, so that a failover slows jobs down instead
of failing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

SENTINEL_SCHEMES = ("redis+sentinel", "sentinel")
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_MASTER_NAME = "mymaster"
# A failover takes the Sentinels' down-after-milliseconds plus the election; commands retry
# (backoff 0.05 s doubling to 1 s) for about this long before they give up.
FAILOVER_RETRY_SECONDS = 30
_RETRIES = 36


class RedisURLError(ValueError):
    """``LUAQ_REDIS_URL`` cannot be used; the message says why."""


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel URL, parsed: where the Sentinels are and which master to ask them for."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str, master_name: str | None = None) -> SentinelTarget:
    """Parse a ``redis+sentinel://`` or ``sentinel://`` URL; ``master_name`` is the
    fallback when the URL names none."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise RedisURLError(f"not a Sentinel URL: {url!r}")
    # kombu's form lists one URL per Sentinel, separated by ';'.
    for other in SENTINEL_SCHEMES:
        rest = rest.replace(f";{other}://", ",")
    rest, _, query_text = rest.partition("?")
    netloc, _, path = rest.partition("/")
    query = {key: values[-1] for key, values in parse_qs(query_text).items()}
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part, url) for part in hosts.split(",") if part.strip())
    if not sentinels:
        raise RedisURLError(f"the Sentinel URL names no Sentinel host: {url!r}")
    segments = [unquote(s) for s in path.split("/") if s]
    name = query.get("master_name") or query.get("service_name")
    db_text = query.get("db")
    if len(segments) == 1 and segments[0].isdigit():  # kombu's sentinel://host:port/db
        db_text = db_text or segments[0]
    elif segments:
        name = segments[0]
        if len(segments) > 1:
            db_text = segments[1]
        if len(segments) > 2:
            raise RedisURLError(f"a Sentinel URL's path is /master_name/db, got {path!r}")
    try:
        db = int(db_text or 0)
    except ValueError:
        raise RedisURLError(f"the database in {url!r} must be a number, got {db_text!r}") from None
    return SentinelTarget(
        sentinels=sentinels,
        master_name=name or master_name or DEFAULT_MASTER_NAME,
        db=db,
        username=username,
        password=password,
        sentinel_password=query.get("sentinel_password"),
    )


def _host_port(part: str, url: str) -> tuple[str, int]:
    part = part.strip()
    if part.startswith("["):  # [::1]:26379
        host, _, port = part[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
    try:
        return host, int(port) if port else DEFAULT_SENTINEL_PORT
    except ValueError:
        raise RedisURLError(f"bad Sentinel address {part!r} in {url!r}") from None


def failover_retry() -> Retry:
    """Retry a dropped connection (backoff 0.05 s doubling to 1 s) for about
    :data:`FAILOVER_RETRY_SECONDS`."""
    return Retry(ExponentialBackoff(cap=1.0, base=0.05), _RETRIES,
                 supported_errors=(redis.ConnectionError, redis.TimeoutError))  # fmt: skip


def redis_client(url: str, *, master_name: str | None = None, decode_responses: bool = True,
                 **kwargs: Any) -> redis.Redis:  # fmt: skip
    """A redis-py client for ``url``: plain, or the current primary behind Sentinels.

    ``master_name`` is used when a Sentinel URL names no master; ``kwargs`` go to every
    connection (``socket_timeout``, ...)."""
    if not is_sentinel_url(url):
        try:
            return redis.Redis.from_url(url, decode_responses=decode_responses, **kwargs)
        except ValueError as exc:
            raise RedisURLError(str(exc)) from None
    target = parse_sentinel_url(url, master_name)
    sentinel_kwargs: dict[str, Any] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    options: dict[str, Any] = {"db": target.db, "decode_responses": decode_responses, "retry": failover_retry(),
                               "socket_connect_timeout": 2.0, **kwargs}  # fmt: skip
    if target.username:
        options["username"] = target.username
    if target.password is not None:
        options["password"] = target.password
    return sentinel.master_for(target.master_name, **options)


def celery_broker(url: str, *, master_name: str | None = None) -> tuple[str, dict[str, Any]]:
    """Celery's ``broker_url`` for ``url`` and the transport options it needs on top of
    luaq's own (kombu's ``sentinel://`` transport: ``master_name``, ``sentinel_kwargs``)."""
    if not is_sentinel_url(url):
        return url, {}
    target = parse_sentinel_url(url, master_name)
    auth = ""
    if target.password is not None or target.username:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    broker = ";".join(f"sentinel://{auth}{_netloc(host)}:{port}/{target.db}" for host, port in target.sentinels)
    options: dict[str, Any] = {"master_name": target.master_name}
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return broker, options


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def describe(url: str) -> str:
    """``url`` without its passwords, for messages and logs."""
    url = re.sub(r"(://[^:/@;]*:)[^@;/]*@", r"\1***@", url)
    return re.sub(r"(sentinel_password=)[^&;]*", r"\1***", url)
