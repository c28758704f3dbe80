"""The huey instance: SqliteHuey in the data directory, or RedisHuey for a redis URL.

Tasks are contributed through the ``workbench_jobs`` hook, so the core and plugins define
them the same way. ``EmbeddedConsumer`` runs inside ``workbench serve`` and leaves signal
handling to the server; ``workbench worker`` runs huey's own consumer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

from workbench.config import QUEUE_SCHEMES

if TYPE_CHECKING:
    from workbench.runtime import Runtime


class QueueConfigError(Exception):
    """The queue URL names a backend Workbench cannot use."""


def build_huey(runtime: Runtime, *, immediate: bool = False) -> Huey:
    settings = runtime.settings
    url = settings.queue_url
    huey: Huey
    if not url:
        settings.data_path.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("workbench", filename=str(settings.jobs_db_path), immediate=immediate)
    elif url.startswith(QUEUE_SCHEMES):
        huey = RedisHuey("workbench", url=url, immediate=immediate)
    else:
        raise QueueConfigError(
            "queue_url must be empty (SQLite queue in the data directory) or a redis:// URL"
        )
    runtime.pm.hook.workbench_jobs(huey=huey, runtime=runtime)
    return huey


class EmbeddedConsumer(Consumer):
    """A consumer that runs beside the web server and leaves signals to the server."""

    def _set_signal_handlers(self) -> None:
        return None


def start_embedded_consumer(huey: Huey, workers: int) -> EmbeddedConsumer:
    consumer = EmbeddedConsumer(huey, workers=workers, worker_type="thread", periodic=True)
    consumer.start()
    return consumer


class UnknownTask(Exception):
    """No task of that name was registered through the ``workbench_jobs`` hook."""


def enqueue(huey: Huey, name: str, *args: object, **kwargs: object) -> Any:
    """Enqueue a task by the ``name=`` it was registered with; returns huey's Result."""
    for task_class in huey._registry._registry.values():
        if task_class.__name__ == name:
            return huey.enqueue(task_class(args=args, kwargs=kwargs))
    raise UnknownTask(f"no job named {name!r}")
