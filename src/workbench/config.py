"""Settings: ``workbench.toml`` then ``WORKBENCH_*`` environment variables (environment wins).

Validated once at start-up with msgspec. A wrong value stops start-up with one line that names
the key, the value, where it came from and what is allowed.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

ENV_PREFIX = "WORKBENCH_"
SECRET_FIELDS = frozenset({"queue_url"})
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Every setting Workbench reads. Field names are the TOML keys; env vars are upper-case."""

    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: Port = 8000
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    queue_url: str = ""
    """Empty for SqliteHuey in the data directory, or a ``redis://`` URL for RedisHuey."""
    worker_threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    busy_timeout_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] = 5000
    max_open_workspaces: PositiveInt = 256
    reader_pool_size: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    max_body_bytes: PositiveInt = 10 * 1024 * 1024
    signup_enabled: bool = True
    secure_cookies: bool = True
    plugins_dir: str = ""
    outbound_allowlist: list[str] = []
    """Hosts that outbound HTTP may reach even when they resolve to private or loopback
    addresses (comma-separated in the environment)."""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def control_db_path(self) -> Path:
        return self.data_path / "control.db"

    @property
    def workspaces_path(self) -> Path:
        return self.data_path / "workspaces"

    @property
    def secret_key_path(self) -> Path:
        return self.data_path / "secret.key"

    @property
    def jobs_db_path(self) -> Path:
        return self.data_path / "jobs.db"


class ConfigError(Exception):
    """A setting is missing, unknown or out of range; the message is one line."""


FIELD_NAMES = tuple(f.name for f in msgspec.structs.fields(Settings))
KNOWN_ENV = frozenset(
    {ENV_PREFIX + name.upper() for name in FIELD_NAMES}
    | {"WORKBENCH_CONFIG", "WORKBENCH_NO_ENTRY_POINTS"}
)


def load_settings(
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings from the TOML file, the environment and explicit overrides.

    ``config_file`` defaults to ``$WORKBENCH_CONFIG`` or ``./workbench.toml`` when present.
    """
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    sources: dict[str, str] = {}

    unknown = sorted(
        name for name in environ if name.startswith(ENV_PREFIX) and name not in KNOWN_ENV
    )
    if unknown:
        raise ConfigError(
            f"unknown environment variable {unknown[0]}; known: {', '.join(sorted(KNOWN_ENV))}"
        )
    explicit = config_file or environ.get("WORKBENCH_CONFIG")
    path = Path(explicit or "workbench.toml")
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: invalid TOML: {exc}") from None
        for key, value in file_values.items():
            if key not in FIELD_NAMES:
                raise ConfigError(
                    f"config file {path}: unknown key {key!r}; known keys: {', '.join(FIELD_NAMES)}"
                )
            raw[key] = value
            sources[key] = str(path)
    elif explicit:
        raise ConfigError(f"config file {path} does not exist")

    for key in FIELD_NAMES:
        env_name = ENV_PREFIX + key.upper()
        if env_name in environ:
            raw[key] = _coerce_env(key, environ[env_name])
            sources[key] = env_name

    for key, value in overrides.items():
        if value is not None:
            raw[key] = value
            sources[key] = "command line"

    for key, value in raw.items():
        _check_field(key, value, sources[key])
    queue_url = raw.get("queue_url", "")
    if queue_url and not str(queue_url).startswith(QUEUE_SCHEMES):
        raise ConfigError(
            f"invalid setting queue_url={queue_url!r} (from {sources['queue_url']}): expected "
            "empty (SQLite queue in the data directory) or a redis://, rediss:// or unix:// URL"
        )
    return msgspec.convert(raw, Settings, strict=False)


def _coerce_env(key: str, value: str) -> Any:
    """Environment values are strings; booleans accept the usual spellings."""
    annotation = _field_type(key)
    if typing.get_origin(annotation) is list:
        return [part.strip() for part in value.split(",") if part.strip()]
    if annotation is bool:
        lowered = value.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
    return value


def _field_type(key: str) -> Any:
    hints = typing.get_type_hints(Settings, include_extras=True)
    return _strip_annotated(hints[key])


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _check_field(key: str, value: Any, source: str) -> None:
    hints = typing.get_type_hints(Settings, include_extras=True)
    annotation = hints[key]
    try:
        msgspec.convert(value, annotation, strict=False)
    except msgspec.ValidationError:
        raise ConfigError(
            f"invalid setting {key}={value!r} (from {source}): expected {describe_type(annotation)}"
        ) from None


def describe_type(annotation: Any) -> str:
    """Say in words what a field allows: 'one of NORMAL, FULL', 'an integer from 1 to 65535'."""
    bounds = ""
    if typing.get_origin(annotation) is Annotated:
        base, *metas = typing.get_args(annotation)
        for meta in metas:
            if isinstance(meta, msgspec.Meta):
                if meta.ge is not None and meta.le is not None:
                    bounds = f" from {meta.ge} to {meta.le}"
                elif meta.ge is not None:
                    bounds = f" of at least {meta.ge}"
        annotation = base
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(v) for v in typing.get_args(annotation))
    if annotation is bool:
        return "a boolean (true/false)"
    if annotation is int:
        return "an integer" + bounds
    if annotation is str:
        return "a string"
    if typing.get_origin(annotation) is list:
        return "a list of strings (comma-separated in the environment)"
    if isinstance(annotation, types.UnionType):
        return " or ".join(describe_type(a) for a in typing.get_args(annotation))
    return str(annotation)


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]+)@")


def mask_secret(key: str, value: Any) -> Any:
    """Hide credentials when showing settings: URL passwords and whole secret fields."""
    if key in SECRET_FIELDS and isinstance(value, str) and value:
        masked = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:****@", value)
        return masked if masked != value else "****"
    return value


def masked_settings(settings: Settings) -> dict[str, Any]:
    return {key: mask_secret(key, getattr(settings, key)) for key in FIELD_NAMES}
