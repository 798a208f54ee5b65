"""Sandbox environments: allowlist, masking, validation (hopx_kernel/server/domain/environment.py)."""

from __future__ import annotations

import pytest

from hopx_kernel.server.domain.environment import MASK, mask_env, sandbox_env, validate_env


def test_env_scrub_and_mask():
    env = {
        "PATH": "/bin",
        "HOPX_API_KEY": "k",
        "my_secret_token": "t",
        "AWS_ACCESS_KEY_ID": "a",
        "DB_PASSWORD": "p",
        "GCP_CREDENTIALS": "c",
        "JPY_PARENT_PID": "1",
        "JUPYTER_RUNTIME_DIR": "/r",
        "HOME": "/h",
        "MPLBACKEND": "agg",
    }
    assert sandbox_env(
        {
            **env,
            "DATABASE_URL": "pg://u:p@h",
            "GITHUB_PAT": "g",
            "NPM_AUTH": "n",
            "PGPASS": "p",
            "SSH_AUTH_SOCK": "/s",
            "LC_ALL": "C",
        }
    ) == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C"}
    masked = mask_env({"API_KEY": "x", "NAME": "y"})
    assert masked == {"API_KEY": MASK, "NAME": "y"}
    assert validate_env({"A": "1"}) == {"A": "1"}
    for bad in ([], {"A": 1}, {"": "x"}, {"A=B": "x"}, {"A": "x\0"}):
        with pytest.raises(ValueError):
            validate_env(bad)
