"""Environment variables of sandboxes: scrubbing, masking, merging. Pure.

The server's own environment may hold the user's HopX key or other secrets; a sandbox
must never see them, so every sandbox process starts from :func:`scrub_env`.

Example:
    >>> scrub_env({"PATH": "/bin", "HOPX_API_KEY": "k", "JPY_PARENT_PID": "1"})
    {'PATH': '/bin'}
    >>> mask_env({"DB_PASSWORD": "x", "HOME": "/h"})
    {'DB_PASSWORD': '***MASKED***', 'HOME': '/h'}
"""

from __future__ import annotations

from collections.abc import Mapping

from ..text import is_secret_name

#: Prefixes of variables that belong to the server's own Jupyter session.
SESSION_PREFIXES = ("JPY_", "JUPYTER_", "IPY_", "KERNEL_LAUNCH_", "PYDEVD_", "VSCODE_")
#: Names dropped outright (session plumbing that would confuse a kernel).
SESSION_NAMES = frozenset({"MPLBACKEND", "PYTHONSTARTUP", "CLICOLOR_FORCE", "FORCE_COLOR"})
MASK = "***MASKED***"


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` without secret-looking, HopX or Jupyter-session variables."""
    out = {}
    for name, value in env.items():
        upper = name.upper()
        if is_secret_name(name) or "HOPX" in upper or upper.startswith(SESSION_PREFIXES) or upper in SESSION_NAMES:
            continue
        out[name] = value
    return out


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the values of secret-looking names replaced by ``***MASKED***``."""
    return {name: (MASK if is_secret_name(name) else value) for name, value in env.items()}


def validate_env(value: object) -> dict[str, str]:
    """Check that a request's ``env_vars`` maps strings to strings.

    Raises:
        ValueError: with a message naming the problem.
    """
    if not isinstance(value, dict):
        raise ValueError("'env_vars' must be an object mapping names to string values")
    for name, item in value.items():
        if not isinstance(name, str) or not name or "=" in name or "\0" in name:
            raise ValueError(f"invalid environment variable name {name!r}")
        if not isinstance(item, str) or "\0" in item:
            raise ValueError(f"environment variable {name!r} must have a string value")
    return dict(value)
