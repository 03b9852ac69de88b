"""Redis URL handling: which client each URL form builds (no server needed: clients connect lazily)."""

from __future__ import annotations

import pytest

from state.connection import _sentinel_parts, connect, connect_async


def test_sentinel_url_names_hosts_service_and_db() -> None:
    assert _sentinel_parts("redis+sentinel://s1:26379,s2:26380/stock/2") == ([("s1", 26379), ("s2", 26380)], "stock", 2)
    assert _sentinel_parts("redis+sentinel://:pw@s1/stock") == ([("s1", 26379)], "stock", 0)


def test_sentinel_url_without_service_is_refused() -> None:
    with pytest.raises(ValueError, match="service name"):
        _sentinel_parts("redis+sentinel://s1:26379")


def test_single_node_clients_never_retry_and_time_out() -> None:
    client = connect("redis://127.0.0.1:1/3", timeout_s=0.05)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["db"] == 3
    assert kwargs["socket_timeout"] == 0.05
    assert kwargs["retry"].get_retries() == 0


def test_async_single_node_client_never_retries() -> None:
    client = connect_async("redis://127.0.0.1:1/0", timeout_s=0.08)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.08
    assert kwargs["retry"].get_retries() == 0
