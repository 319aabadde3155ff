"""LUAQ_REDIS_URL: plain and Sentinel URLs, for redis-py clients and for Celery's broker."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelConnectionPool

from worker.app import create_app
from worker.redis_urls import RedisURLError, celery_broker, describe, parse_sentinel_url, redis_client
from worker.settings import Settings


def test_sentinel_url_names_sentinels_master_and_db():
    target = parse_sentinel_url("redis+sentinel://:s3cret@h1:26380,h2,[::1]:5000/luaq-main/3?sentinel_password=sp")
    assert target.sentinels == (("h1", 26380), ("h2", 26379), ("::1", 5000))
    assert (target.master_name, target.db, target.password, target.sentinel_password) == (
        "luaq-main",
        3,
        "s3cret",
        "sp",
    )


def test_kombu_style_sentinel_url_takes_the_master_from_the_query_or_the_setting():
    """kombu's `sentinel://a;sentinel://b/0` form is accepted; a path of digits is the database."""
    target = parse_sentinel_url("sentinel://a:1;sentinel://b:2/4?master_name=m")
    assert (target.sentinels, target.master_name, target.db) == ((("a", 1), ("b", 2)), "m", 4)
    assert parse_sentinel_url("sentinel://a:1/0", master_name="fromsetting").master_name == "fromsetting"
    assert parse_sentinel_url("sentinel://a:1").master_name == "mymaster"


def test_bad_sentinel_urls_say_what_is_wrong():
    with pytest.raises(RedisURLError, match="no Sentinel host"):
        parse_sentinel_url("redis+sentinel:///m")
    with pytest.raises(RedisURLError, match="bad Sentinel address"):
        parse_sentinel_url("redis+sentinel://h:port/m")


def test_sentinel_url_gives_a_client_through_the_sentinels_and_a_kombu_broker():
    """redis-py asks the Sentinels for the master; Celery gets kombu's sentinel:// transport and master_name."""
    url = "redis+sentinel://:pw@h1:26380,h2:26381/luaq/2"
    client = redis_client(url)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "luaq"
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "pw"
    assert pool.connection_kwargs["retry"].get_retries() > 10  # rides out a failover
    broker, options = celery_broker(url)
    assert broker == "sentinel://:pw@h1:26380/2;sentinel://:pw@h2:26381/2"
    assert options == {"master_name": "luaq"}
    app = create_app(Settings(redis_url=url, environ={}))
    assert app.conf.broker_transport_options["master_name"] == "luaq"
    assert "visibility_timeout" in app.conf.broker_transport_options
    assert app.connection_for_write().transport_cls == "sentinel"


def test_plain_urls_pass_through():
    assert celery_broker("redis://h:6379/1") == ("redis://h:6379/1", {})
    assert redis_client("redis://h:6379/1").connection_pool.connection_kwargs["db"] == 1


def test_describe_hides_passwords():
    assert (
        describe("redis+sentinel://u:pw@h1,h2/m?sentinel_password=x")
        == "redis+sentinel://u:***@h1,h2/m?sentinel_password=***"
    )
    assert describe("redis://h:6379/0") == "redis://h:6379/0"
