"""Where a deployment sends a service's database connections, read as the service itself reads them."""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from kit import settings

Address = tuple[str | None, int | None]


def address(url: str | None) -> Address:
    assert url is not None
    parts = urlsplit(url)
    return parts.hostname, parts.port


@dataclass(frozen=True)
class Connections:
    """A service's pooled address (its pool), its direct one (its sessions), and its statement cache."""

    pooled: Address
    direct: Address
    statement_cache_size: int


def connections(service: str, env: Mapping[str, str]) -> Connections:
    """What kit.settings makes of `env` for `service` (a name of shop.map.SERVICES)."""
    config = settings.load(service, env)
    return Connections(
        address(config.database_url), address(config.database_direct_url), config.db_statement_cache_size
    )


@dataclass(frozen=True)
class Bouncer:
    """What a pgbouncer.ini says: how it pools, its port, and the server behind every database."""

    pool_mode: str
    port: int
    server: Address


def bouncer(ini: str) -> Bouncer:
    parser = configparser.ConfigParser(comment_prefixes=(";", "#"), interpolation=None)
    parser.read_string(ini)
    (database,) = parser["databases"].values()
    server = dict(option.split("=", 1) for option in database.split())
    options = parser["pgbouncer"]
    return Bouncer(options["pool_mode"], int(options["listen_port"]), (server["host"], int(server["port"])))
