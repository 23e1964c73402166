"""Settings: read once from the environment (and `.env`), validated, then injected."""

import ipaddress
import os
from collections.abc import Callable, Mapping
from typing import Literal
from urllib.parse import urlsplit

import msgspec
from dotenv import dotenv_values

AppMode = Literal["chat", "agent-chat", "advanced-chat", "agent", "workflow", "completion"]
APP_MODES: tuple[AppMode, ...] = ("chat", "agent-chat", "advanced-chat", "agent", "workflow", "completion")
_KEY_OPTIONS = ("input", "output", "id", "file")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class DifyAppKey(msgspec.Struct, frozen=True):
    key: str
    mode: AppMode | None = None  # stated in configuration; otherwise discovered
    input_variable: str | None = None  # workflow/completion: the input that takes the user's text (else discovered)
    output_key: str | None = None  # workflow: the output shown when nothing was streamed
    model_id: str | None = None  # the model id clients see, instead of the app's name
    file_variable: str | None = None  # workflow: the file input that takes the request's files (else the first)


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    valid_api_keys: tuple[str, ...] = ()
    dify_api_keys: tuple[DifyAppKey, ...] = ()
    dify_api_base: str = "https://api.dify.ai/v1"
    dify_files_url: str | None = None  # where clients open Dify's relative file URLs; None: DIFY_API_BASE's origin
    timeout: float = 120.0
    connect_timeout: float = 5.0
    server_host: str = "127.0.0.1"
    server_port: int = 8000
    dify_http2: bool = False
    dify_transport: Literal["httptools", "aiohttp", "httpx"] = "httptools"
    dify_max_connections: int = 1024
    dify_keepalive: float = 30.0
    max_request_body: int = 20 * 1024 * 1024
    models_cache_ttl: float = 300.0
    models_retry_seconds: float = 30.0
    log_level: str = "INFO"
    conversation_mode: Literal["auto", "stateless", "last"] = "auto"
    conversation_ttl: float = 7 * 24 * 3600.0
    conversation_max_entries: int = 100_000
    redis_url: str | None = None
    system_prompt_variable: str = "system_prompt"
    cors_allow_origins: tuple[str, ...] = ()
    dify_raw_user: bool = False
    redis_timeout: float = 0.5
    redis_retry_seconds: float = 15.0
    max_header_bytes: int = 32 * 1024
    max_header_count: int = 100
    max_url_bytes: int = 8 * 1024
    client_header_timeout: float = 10.0
    client_body_timeout: float = 60.0
    max_connections: int = 2048
    shutdown_grace: float = 30.0
    workers: int = 1
    reasoning_mode: Literal["separate", "inline", "strip"] = "separate"
    tool_use: Literal["reasoning", "tool_calls", "off"] = "reasoning"
    workflow_progress: Literal["off", "reasoning"] = "off"
    speech_voice: Literal["app", "client"] = "app"
    access_log: bool = True
    metrics: bool = False
    metrics_auth: Literal["keys", "token", "open"] = "keys"
    metrics_token: str | None = None
    max_file_bytes: int = 15 * 1024 * 1024
    upload_cache_ttl: float = 3600.0
    task_model: str | None = None  # the model (app) that answers chat UIs' housekeeping; None: the chat's own

    @property
    def auth_required(self) -> bool:
        return bool(self.valid_api_keys)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _split_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def _parse_dify_key(item: str, position: int) -> DifyAppKey:
    """`key[:mode][:input=<variable>][:output=<key>][:id=<model id>][:file=<variable>]`; errors name the entry's
    position, never the key."""
    key, *segments = (part.strip() for part in item.split(":"))
    if not key:
        raise ConfigError(f"DIFY_API_KEYS: entry {position} has no key before its `:`")
    mode: str | None = None
    options: dict[str, str] = {}
    for index, segment in enumerate(segments, start=2):
        name, sep, value = segment.partition("=")
        # a segment may be a mistyped key (a `:` for a `,`): it is named by its place, never echoed
        if not sep:
            if segment not in APP_MODES or mode is not None:
                raise ConfigError(
                    f"DIFY_API_KEYS: entry {position}, part {index} is not a mode "
                    f"(expected one of {', '.join(APP_MODES)}; separate keys with `,`)"
                )
            mode = segment
        elif name.strip() not in _KEY_OPTIONS or not value.strip():
            raise ConfigError(
                f"DIFY_API_KEYS: entry {position}, part {index} is not an option "
                "(expected input=<variable>, output=<key>, id=<model id> or file=<variable>)"
            )
        else:
            options[name.strip()] = value.strip()
    return DifyAppKey(
        key=key,
        mode=mode,  # type: ignore[arg-type]
        input_variable=options.get("input"),
        output_key=options.get("output"),
        model_id=options.get("id"),
        file_variable=options.get("file"),
    )


def _parse_dify_keys(raw: str) -> tuple[DifyAppKey, ...]:
    return tuple(_parse_dify_key(item, position) for position, item in enumerate(_split_list(raw), start=1))


def _parse_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http(s) URL such as https://api.dify.ai/v1")
    if parts.username is not None or parts.password is not None:
        # Dify's app key takes the Authorization header, so Basic credentials could never be sent with it
        raise ValueError(
            "credentials in the URL (user:password@) cannot be used: Dify's app key takes the Authorization "
            "header; remove them (put an authenticating proxy's credentials in the proxy, not here)"
        )
    return raw.strip().rstrip("/")


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or a positive number of seconds")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be between 1 and 65535")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"expected {' or '.join(allowed)}")
        return value

    return parse


_transport = _choice("httptools", "aiohttp", "httpx")


def _redis_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("redis", "rediss", "unix") or (parts.scheme != "unix" and not parts.hostname):
        raise ValueError("expected a URL such as redis://localhost:6379/0")
    return raw.strip()


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ValueError("expected DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


# variable name -> (Settings field, parser)
_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "VALID_API_KEYS": ("valid_api_keys", lambda raw: tuple(_split_list(raw))),
    "DIFY_API_KEYS": ("dify_api_keys", _parse_dify_keys),
    "DIFY_API_BASE": ("dify_api_base", _parse_url),
    "DIFY_FILES_URL": ("dify_files_url", _parse_url),
    "TIMEOUT": ("timeout", _positive_float),
    "CONNECT_TIMEOUT": ("connect_timeout", _positive_float),
    "SERVER_HOST": ("server_host", str.strip),
    "SERVER_PORT": ("server_port", _port),
    "DIFY_HTTP2": ("dify_http2", _bool),
    "DIFY_TRANSPORT": ("dify_transport", _transport),
    "DIFY_MAX_CONNECTIONS": ("dify_max_connections", _positive_int),
    "DIFY_KEEPALIVE": ("dify_keepalive", _positive_float),
    "MAX_REQUEST_BODY": ("max_request_body", _positive_int),
    "MODELS_CACHE_TTL": ("models_cache_ttl", _positive_float),
    "MODELS_RETRY_SECONDS": ("models_retry_seconds", _positive_float),
    "LOG_LEVEL": ("log_level", _log_level),
    "CONVERSATION_MODE": ("conversation_mode", _choice("auto", "stateless", "last")),
    "CONVERSATION_TTL": ("conversation_ttl", _positive_float),
    "CONVERSATION_MAX_ENTRIES": ("conversation_max_entries", _positive_int),
    "REDIS_URL": ("redis_url", _redis_url),
    "SYSTEM_PROMPT_VARIABLE": ("system_prompt_variable", str.strip),
    "CORS_ALLOW_ORIGINS": ("cors_allow_origins", lambda raw: tuple(_split_list(raw))),
    "DIFY_RAW_USER": ("dify_raw_user", _bool),
    "ACCESS_LOG": ("access_log", _bool),
    "METRICS": ("metrics", _bool),
    "METRICS_AUTH": ("metrics_auth", _choice("keys", "token", "open")),
    "METRICS_TOKEN": ("metrics_token", str.strip),
    "REDIS_TIMEOUT": ("redis_timeout", _positive_float),
    "REDIS_RETRY_SECONDS": ("redis_retry_seconds", _positive_float),
    "MAX_HEADER_BYTES": ("max_header_bytes", _positive_int),
    "MAX_HEADER_COUNT": ("max_header_count", _positive_int),
    "MAX_URL_BYTES": ("max_url_bytes", _positive_int),
    "CLIENT_HEADER_TIMEOUT": ("client_header_timeout", _positive_float),
    "CLIENT_BODY_TIMEOUT": ("client_body_timeout", _positive_float),
    "MAX_CONNECTIONS": ("max_connections", _positive_int),
    "SHUTDOWN_GRACE": ("shutdown_grace", _non_negative_float),
    "WEB_CONCURRENCY": ("workers", _positive_int),
    "REASONING_MODE": ("reasoning_mode", _choice("separate", "inline", "strip")),
    "TASK_MODEL": ("task_model", str.strip),
    "TOOL_USE": ("tool_use", _choice("reasoning", "tool_calls", "off")),
    "WORKFLOW_PROGRESS": ("workflow_progress", _choice("off", "reasoning")),
    "MAX_FILE_BYTES": ("max_file_bytes", _positive_int),
    "SPEECH_VOICE": ("speech_voice", _choice("app", "client")),
    "UPLOAD_CACHE_TTL": ("upload_cache_ttl", _positive_float),
}


def _may_hold_secrets(name: str, raw: str) -> bool:
    return "KEY" in name or "TOKEN" in name or name == "REDIS_URL" or (name == "DIFY_API_BASE" and "@" in raw)


def settings_from_mapping(env: Mapping[str, str]) -> Settings:
    """Build Settings from a mapping of environment variables; raise ConfigError naming the bad one."""
    values: dict[str, object] = {}
    for name, (field, parse) in _VARIABLES.items():
        raw = env.get(name)
        if raw is None or (raw.strip() == "" and name not in ("VALID_API_KEYS", "DIFY_API_KEYS")):
            continue
        try:
            values[field] = parse(raw)
        except ConfigError:
            raise
        except ValueError as exc:
            shown = "" if _may_hold_secrets(name, raw) else f" {raw!r}"
            raise ConfigError(f"{name}: invalid value{shown}: {exc}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.metrics and settings.metrics_auth == "token" and not settings.metrics_token:
        raise ConfigError("METRICS_TOKEN: required when METRICS_AUTH=token")
    return settings


def load_settings(dotenv_path: str = ".env") -> Settings:
    """Process environment first, then `.env` for what the environment does not set."""
    env: dict[str, str] = {k: v for k, v in dotenv_values(dotenv_path).items() if v is not None}
    env.update(os.environ)
    return settings_from_mapping(env)
