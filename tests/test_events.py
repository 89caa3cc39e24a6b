"""Every event, encoded as its publisher encodes it, decodes with every consumer's Struct.

A service never imports another, so each declares the events it publishes and, for those it consumes,
the fields it reads: this is where the two meet. A consumer's Struct is its handler's event type (what
kit.bus decodes with); a publisher's is a service's `kit.bus.Event` for a routing key it does not
consume. Each publisher Struct is filled in, every field and optional one included, encoded as
`kit.bus.publish` encodes it, and decoded with the Struct of every handler of its routing key, which
must find each field it declares in the message (a default would otherwise hide a renamed field).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

import msgspec
import pytest

from kit.bus import Event, event_type
from shop.map import EXCHANGES
from shop.migrate import services

pytestmark = pytest.mark.offline

_encode = msgspec.json.Encoder().encode  # as kit.bus.publish


def _consumers() -> dict[str, list[tuple[str, type[Event]]]]:
    """{routing key: [(service, Struct its handler decodes into)]}."""
    found: dict[str, list[tuple[str, type[Event]]]] = defaultdict(list)
    for service in services():
        for key, handler in service.handlers.items():
            found[key].append((service.name, event_type(handler)))
    return found


def _subclasses(kind: type[Event]) -> list[type[Event]]:
    return [k for sub in kind.__subclasses__() for k in (sub, *_subclasses(sub))]


def _publishes(kind: type[Event]) -> bool:
    """Whether `kind` is a publisher's: a service's event whose routing key that service does not consume
    (a consumer may declare a Struct only to name a routing key its handler shares with another)."""
    service = kind.__module__.partition(".")[0]
    key = getattr(kind, "routing_key", None)  # None: a base of other events
    consumers = {f"svc_{name}" for name, _ in CONSUMERS.get(key or "", [])}
    return service.startswith("svc_") and key is not None and service not in consumers


CONSUMERS = _consumers()
PUBLISHERS = [kind for kind in _subclasses(Event) if _publishes(kind)]


def _field(f: msgspec.inspect.Field) -> object:
    # A default says what a field holds when the publisher has nothing special to say (a country, a
    # currency); only an empty one (None, a factory) is replaced, so optional values are exercised too.
    if f.default not in (msgspec.NODEFAULT, None):
        return msgspec.to_builtins(f.default)
    return _example(f.type)


def _example(t: msgspec.inspect.Type) -> object:
    """A JSON value of type `t`, with something in every field and optional value."""
    if isinstance(t, msgspec.inspect.StructType):
        return {f.encode_name: _field(f) for f in t.fields}
    if isinstance(t, msgspec.inspect.UnionType):
        return _example(next(x for x in t.types if not isinstance(x, msgspec.inspect.NoneType)))
    if isinstance(t, msgspec.inspect.ListType | msgspec.inspect.SetType | msgspec.inspect.FrozenSetType):
        return [_example(t.item_type)]
    if isinstance(t, msgspec.inspect.DictType):
        return {_example(t.key_type): _example(t.value_type)}
    if isinstance(t, msgspec.inspect.LiteralType):
        return t.values[0]
    if isinstance(t, msgspec.inspect.StrType):
        return "x" * max(1, t.min_length or 0)
    simple: dict[type[msgspec.inspect.Type], object] = {
        msgspec.inspect.IntType: 3,
        msgspec.inspect.FloatType: 1.5,
        msgspec.inspect.DecimalType: "1.50",
        msgspec.inspect.BoolType: True,
        msgspec.inspect.UUIDType: str(uuid.uuid4()),
        msgspec.inspect.DateTimeType: datetime.now(UTC).isoformat(),
    }
    if type(t) not in simple:
        raise NotImplementedError(f"no example for {t!r}: add one")
    return simple[type(t)]


def published(kind: type[Event]) -> bytes:
    """`kind` filled in, as its publisher's Struct holds it and kit.bus puts it on the wire."""
    event = msgspec.convert(_example(msgspec.inspect.type_info(kind)), kind)
    return _encode(event)


def _name(kind: type[Event]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def test_every_consumed_routing_key_has_a_publisher_and_an_exchange() -> None:
    published_keys = {kind.routing_key for kind in PUBLISHERS}
    assert set(CONSUMERS) <= published_keys, "consumed but published by no service"
    assert published_keys <= set(EXCHANGES), "published on no exchange"


@pytest.mark.parametrize("publisher", PUBLISHERS, ids=_name)
def test_every_consumer_reads_what_the_publisher_sends(publisher: type[Event]) -> None:
    wire = published(publisher)
    fields = set(msgspec.json.decode(wire))
    for service, consumer in CONSUMERS.get(publisher.routing_key, []):
        msgspec.json.decode(wire, type=consumer)
        read = {f.encode_name for f in msgspec.inspect.type_info(consumer).fields}
        assert read <= fields, (
            f"svc_{service} reads {sorted(read - fields)}, which {_name(publisher)} never sends"
        )


def test_an_aborted_checkout_concerns_only_what_it_may_have_held() -> None:
    assert {service for service, _ in CONSUMERS["checkout.aborted"]} == {"discount", "inventory"}
