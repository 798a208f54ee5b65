"""Kernel configuration from the environment (also settable in the kernelspec's ``env``).

Pure: a mapping in, a :class:`Config` out. The API key is kept out of ``repr`` so a
config object can be logged.

Variables:
    HOPX_API_KEY         cloud mode: create a sandbox with this key.
    HOPX_BASE_URL        the control plane (default ``https://api.hopx.dev`` with a key).
    HOPX_TEMPLATE        template for new sandboxes (default ``code-interpreter``).
    HOPX_SANDBOX_ID      attach to this existing sandbox; it is never deleted.
    HOPX_SANDBOX_TIMEOUT sandbox lifetime in seconds, extended while the kernel lives
                         (default 3600, 60 to 2592000 = 30 days).
    HOPX_EXEC_TIMEOUT    per-cell timeout in seconds sent to the agent (default: none sent).
    HOPX_WORKDIR         working directory for each cell (default: none sent, so ``%cd``
                         persists).
    HOPX_ENV             JSON object of variables passed to every cell as the frame's ``env``.
    HOPX_PING_INTERVAL   seconds between WebSocket pings while a cell runs (default 20).
    HOPX_PING_TIMEOUT    seconds without a pong before the sandbox counts as stalled
                         (default 20).
    HOPX_LOCAL_MEMORY_MB embedded mode: memory (address-space) cap of the local sandbox's
                         Python, in MB (default: none).
    HOPX_LOCAL_MAX_PROCS embedded mode: process cap of the local sandbox (default: none).
    HOPX_LOG_LEVEL       the kernel's log level: DEBUG, INFO, WARNING (default), ERROR or
                         CRITICAL.
    HOPX_CA_BUNDLE       PEM file of CA certificates to trust for https/wss instead of the
                         system store (default: ``SSL_CERT_FILE`` if set, else the system).

With neither HOPX_API_KEY nor HOPX_BASE_URL the kernel runs in *embedded* mode: it starts
the local sandbox server of this package and creates a sandbox there.

Example:
    >>> from_env({}).mode
    'embedded'
    >>> from_env({"HOPX_API_KEY": "k"}).base_url
    'https://api.hopx.dev'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import ConfigError

DEFAULT_BASE_URL = "https://api.hopx.dev"
DEFAULT_TEMPLATE = "code-interpreter"
#: The longest HOPX_SANDBOX_TIMEOUT (30 days, the local server's cap on timeout_seconds too).
MAX_SANDBOX_TIMEOUT = 30 * 24 * 3600

Mode = Literal["embedded", "cloud", "attach"]
#: The names HOPX_LOG_LEVEL accepts (the ``logging`` module's own, any case).
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Config:
    """Where the sandbox comes from and how cells run in it."""

    mode: Mode = "embedded"
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    template: str = DEFAULT_TEMPLATE
    sandbox_id: str | None = None
    sandbox_timeout: int = 3600
    exec_timeout: float | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    log_level: str = "WARNING"
    ca_bundle: str | None = None
    local_memory_mb: int | None = None
    local_max_procs: int | None = None


def _number(
    env: Mapping[str, str],
    name: str,
    default,
    *,
    minimum: float = 0.0,
    cast=float,
    unit: str = "seconds",
    maximum: float = math.inf,
):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    hint = f"Set it to a number of {unit}." if cast is float else f"Set it to a whole number of {unit}."
    try:
        value = cast(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number", hint) from exc
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r} is not a number", hint)
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} is too small", f"Use a value of at least {minimum:g}.")
    if value > maximum:
        raise ConfigError(f"{name}={raw!r} is too large", f"Use a value of at most {maximum:g}.")
    return value


def _env_object(raw: str) -> dict[str, str]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"HOPX_ENV is not valid JSON ({exc.msg})",
            'Set it to a JSON object such as {"NAME": "value"}.',
        ) from exc
    if not isinstance(value, dict):
        raise ConfigError("HOPX_ENV must be a JSON object", 'For example {"NAME": "value"}.')
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("HOPX_LOG_LEVEL", "").strip()
    level = raw.upper() or "WARNING"
    if level not in LOG_LEVELS:
        raise ConfigError(
            f"HOPX_LOG_LEVEL={raw!r} is not a log level", f"Use one of {', '.join(LOG_LEVELS)}."
        )
    return level


def from_env(env: Mapping[str, str]) -> Config:
    """Build the kernel's configuration from environment variables.

    Raises:
        ConfigError: a variable is malformed or the combination makes no sense.
    """
    api_key = env.get("HOPX_API_KEY", "").strip() or None
    base_url = env.get("HOPX_BASE_URL", "").strip().rstrip("/") or None
    sandbox_id = env.get("HOPX_SANDBOX_ID", "").strip() or None
    if base_url and not base_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"HOPX_BASE_URL={base_url!r} is not an http(s) URL",
            "Set it like https://api.hopx.dev.",
        )
    if api_key is None and (base_url or sandbox_id):
        which = "HOPX_BASE_URL" if base_url else "HOPX_SANDBOX_ID"
        raise ConfigError(
            f"{which} is set but HOPX_API_KEY is not",
            "Set HOPX_API_KEY too, or unset both to use the embedded local sandbox.",
        )
    if api_key is None:
        mode: Mode = "embedded"
    else:
        mode = "attach" if sandbox_id else "cloud"
        base_url = base_url or DEFAULT_BASE_URL
    raw_env = env.get("HOPX_ENV", "").strip()
    return Config(
        mode=mode,
        api_key=api_key,
        base_url=base_url,
        template=env.get("HOPX_TEMPLATE", "").strip() or DEFAULT_TEMPLATE,
        sandbox_id=sandbox_id,
        sandbox_timeout=_number(
            env, "HOPX_SANDBOX_TIMEOUT", 3600, minimum=60, cast=int, maximum=MAX_SANDBOX_TIMEOUT
        ),
        exec_timeout=_number(env, "HOPX_EXEC_TIMEOUT", None, minimum=0) or None,
        workdir=env.get("HOPX_WORKDIR", "").strip() or None,
        env=_env_object(raw_env) if raw_env else {},
        ping_interval=_number(env, "HOPX_PING_INTERVAL", 20.0, minimum=0.05),
        ping_timeout=_number(env, "HOPX_PING_TIMEOUT", 20.0, minimum=0.05),
        log_level=_log_level(env),
        local_memory_mb=_number(env, "HOPX_LOCAL_MEMORY_MB", None, minimum=1, cast=int, unit="MB"),
        local_max_procs=_number(env, "HOPX_LOCAL_MAX_PROCS", None, minimum=1, cast=int, unit="processes"),
        ca_bundle=(env.get("HOPX_CA_BUNDLE", "").strip() or env.get("SSL_CERT_FILE", "").strip() or None),
    )
