"""One event envelope, a registry of event types, the outbox and the dispatcher."""

from workbench.events.envelope import Event, EventRegistry, EventType, UnknownEventType
from workbench.events.outbox import emit

__all__ = ["Event", "EventRegistry", "EventType", "UnknownEventType", "emit"]
