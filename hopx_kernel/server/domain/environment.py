"""Environment variables of sandboxes: the allowlist, masking, validation. Pure.

The server's own environment may hold the user's HopX key and any other secret
(``DATABASE_URL``, ``GITHUB_PAT``, ``SSH_AUTH_SOCK``...), so a sandbox starts from an
**allowlist** (:func:`sandbox_env`): the search path, locale, home and user, terminal,
time zone, temp folder and Python's own variables. Anything else reaches a sandbox only
when the client passes it (``env_vars``, ``/env``, an execution's ``env``).

Example:
    >>> sandbox_env({"PATH": "/bin", "HOPX_API_KEY": "k", "DATABASE_URL": "pg://u:p@h",
    ...              "LC_ALL": "C.UTF-8"})
    {'PATH': '/bin', 'LC_ALL': 'C.UTF-8'}
    >>> mask_env({"DB_PASSWORD": "x", "HOME": "/h"})
    {'DB_PASSWORD': '***MASKED***', 'HOME': '/h'}
"""

from __future__ import annotations

from collections.abc import Mapping

from ...text import is_secret_name

#: Variables a sandbox inherits from the server, by exact name.
ALLOWED_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONIOENCODING",
        "PYTHONUTF8",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONHASHSEED",
        "PYTHONNOUSERSITE",
        "PYTHONWARNINGS",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "LD_LIBRARY_PATH",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    }
)
#: Variables a sandbox inherits by prefix (locale categories).
ALLOWED_PREFIXES = ("LC_",)
MASK = "***MASKED***"


def sandbox_env(env: Mapping[str, str]) -> dict[str, str]:
    """The allowlisted part of ``env``: what every sandbox process starts from."""
    return {
        name: value
        for name, value in env.items()
        if (name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)) and not is_secret_name(name)
    }


def mask_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the values of secret-looking names replaced by ``***MASKED***``."""
    return {name: (MASK if is_secret_name(name) else value) for name, value in env.items()}


def env_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an environment variable name, or None when it can."""
    if not isinstance(name, str) or not name:
        return f"invalid environment variable name {name!r}: it must be a non-empty string"
    if "=" in name or "\0" in name:
        return f"invalid environment variable name {name!r}: it holds '=' or a NUL character"
    return None


def validate_env(value: object) -> dict[str, str]:
    """Check that a request's ``env_vars`` maps strings to strings.

    Raises:
        ValueError: with a message naming the problem.
    """
    if not isinstance(value, dict):
        raise ValueError("'env_vars' must be an object mapping names to string values")
    for name, item in value.items():
        problem = env_name_problem(name)
        if problem:
            raise ValueError(problem)
        if not isinstance(item, str) or "\0" in item:
            raise ValueError(f"environment variable {name!r} must have a string value without NUL characters")
    return dict(value)
