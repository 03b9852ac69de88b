"""`omnistream keys ...`: API keys with roles, stored hashed in Redis (`state.api_keys`).

`create` prints the key once, on stdout alone (so `KEY=$(omnistream keys create --role
console)` works) and its id on stderr; nothing else ever shows it again. `list` and
`revoke` name keys by id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from omnistream.cli.common import console, err_console, fail, load_settings

if TYPE_CHECKING:
    from state.api_keys import KeyStore

keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)

_ROLES = "storefront, console or admin"


def _store() -> KeyStore:
    from redis.exceptions import RedisError

    from state.api_keys import KeyStore
    from state.connection import connect

    settings = load_settings()
    client = connect(settings.redis.url)
    try:
        client.ping()
    except RedisError as ex:
        fail(f"Redis at OMNISTREAM_REDIS_URL does not answer ({type(ex).__name__})")
    return KeyStore(client)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help=f"The key's role: {_ROLES}.")],
    name: Annotated[str, typer.Option(help="A label: who or what uses the key.")] = "",
    rate: Annotated[
        float | None,
        typer.Option(min=0.001, help="Its own requests/s per API process [default: the setting]."),
    ] = None,
) -> None:
    """Create a key for ROLE and print it (once: only its hash is stored)."""
    from serving.auth.roles import Role

    try:
        parsed = Role.parse(role)
    except ValueError as ex:
        fail(str(ex))
    issued = _store().create(parsed.label, name, rate)
    err_console.print(f"created key {issued.record.id} ({parsed.label}); it is shown once:", highlight=False)
    print(issued.key)


@keys_app.command("list")
def keys_list() -> None:
    """List the keys: id, role, label, creation time, rate (never the keys)."""
    table = Table(title="API keys")
    for column in ("id", "role", "name", "created", "rate/s"):
        table.add_column(column)
    for record in _store().records():
        created = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        rate = "default" if record.rate_per_s is None else f"{record.rate_per_s:g}"
        table.add_row(record.id, record.role, record.name, created, rate)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (or a prefix naming one key).")]) -> None:
    """Revoke a key: every API process refuses it within OMNISTREAM_AUTH_KEY_CACHE_S (under a second)."""
    try:
        record = _store().revoke(key_id)
    except ValueError as ex:
        fail(str(ex))
    if record is None:
        fail(f"no key has id {key_id!r}")
    console.print(f"revoked key {record.id} ({record.role}{', ' + record.name if record.name else ''})")
