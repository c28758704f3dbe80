"""The event envelope every part of Workbench speaks, and the registry of event types."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import msgspec

from workbench.clock import Clock, SystemClock, isoformat
from workbench.ids import new_id


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened in a workspace."""

    event_id: str
    event_type: str
    workspace_id: str
    correlation_id: str | None
    causation_id: str | None = None
    version: int
    occurred_at: str
    actor: str | None = None
    payload: dict[str, Any] = {}


@dataclass(frozen=True)
class EventType:
    """A registered event type at one version, with the Struct its payload must fit."""

    name: str
    version: int
    schema: type[msgspec.Struct]
    description: str = ""


class UnknownEventType(Exception):
    """An event was emitted with a type or version nobody registered."""


class EventRegistry:
    """Event types by (name, version). A consumer may read every version it declares."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, int], EventType] = {}
        self._lock = threading.Lock()

    def register(self, event_type: EventType) -> None:
        with self._lock:
            key = (event_type.name, event_type.version)
            existing = self._types.get(key)
            if existing is not None and existing.schema is not event_type.schema:
                raise ValueError(f"event type {key} is already registered with another schema")
            self._types[key] = event_type

    def get(self, name: str, version: int) -> EventType:
        try:
            return self._types[(name, version)]
        except KeyError:
            raise UnknownEventType(
                f"event type {name!r} version {version} is not registered"
            ) from None

    def latest(self, name: str) -> EventType:
        versions = [t for (n, _), t in self._types.items() if n == name]
        if not versions:
            raise UnknownEventType(f"event type {name!r} is not registered")
        return max(versions, key=lambda t: t.version)

    def all(self) -> list[EventType]:
        return sorted(self._types.values(), key=lambda t: (t.name, t.version))

    def build(
        self,
        event_type: str,
        *,
        workspace_id: str,
        payload: msgspec.Struct | dict[str, Any],
        version: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        actor: str | None = None,
        clock: Clock | None = None,
    ) -> Event:
        """Make an envelope, validating the payload against the registered schema."""
        spec = self.latest(event_type) if version is None else self.get(event_type, version)
        raw = msgspec.to_builtins(payload)
        try:
            checked = msgspec.convert(raw, spec.schema)
        except msgspec.ValidationError as exc:
            raise ValueError(f"payload of {event_type} v{spec.version}: {exc}") from None
        return Event(
            event_id=new_id("evt"),
            event_type=spec.name,
            workspace_id=workspace_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            version=spec.version,
            occurred_at=isoformat((clock or SystemClock()).now()),
            actor=actor,
            payload=msgspec.to_builtins(checked),
        )

    def decode_payload(self, event: Event) -> msgspec.Struct:
        """The payload as the Struct of its registered type and version."""
        return msgspec.convert(event.payload, self.get(event.event_type, event.version).schema)
