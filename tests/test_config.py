"""Kernel configuration from HOPX_* variables."""

from __future__ import annotations

import pytest

from hopx_kernel.config import DEFAULT_BASE_URL, Config, from_env
from hopx_kernel.errors import ConfigError


def test_nothing_set_is_embedded_with_defaults():
    config = from_env({})
    assert config == Config()
    assert config.mode == "embedded"
    assert config.api_key is None and config.base_url is None
    assert config.template == "code-interpreter"
    assert config.sandbox_timeout == 3600
    assert config.exec_timeout is None and config.workdir is None and config.env == {}
    assert (config.ping_interval, config.ping_timeout) == (20.0, 20.0)


def test_key_alone_is_cloud_at_the_default_base_url():
    config = from_env({"HOPX_API_KEY": " hopx_live_abc "})
    assert config.mode == "cloud"
    assert config.api_key == "hopx_live_abc"
    assert config.base_url == DEFAULT_BASE_URL == "https://api.hopx.dev"


def test_cloud_with_own_base_url_and_template():
    config = from_env(
        {"HOPX_API_KEY": "k", "HOPX_BASE_URL": "http://127.0.0.1:8080/", "HOPX_TEMPLATE": "python"}
    )
    assert (config.mode, config.base_url, config.template) == ("cloud", "http://127.0.0.1:8080", "python")


def test_sandbox_id_attaches():
    config = from_env({"HOPX_API_KEY": "k", "HOPX_SANDBOX_ID": "sbx_123"})
    assert (config.mode, config.sandbox_id, config.base_url) == ("attach", "sbx_123", DEFAULT_BASE_URL)


@pytest.mark.parametrize("name", ["HOPX_BASE_URL", "HOPX_SANDBOX_ID"])
def test_url_or_id_without_key_says_what_to_do(name):
    value = "https://api.hopx.dev" if name == "HOPX_BASE_URL" else "sbx_1"
    with pytest.raises(ConfigError) as info:
        from_env({name: value})
    line = info.value.line()
    assert f"{name} is set but HOPX_API_KEY is not" in line
    assert "Set HOPX_API_KEY" in line
    assert "\n" not in line


def test_base_url_must_be_http():
    with pytest.raises(ConfigError, match="not an http"):
        from_env({"HOPX_API_KEY": "k", "HOPX_BASE_URL": "api.hopx.dev"})


@pytest.mark.parametrize(
    "name, raw, words",
    [
        ("HOPX_SANDBOX_TIMEOUT", "soon", "is not a number"),
        ("HOPX_SANDBOX_TIMEOUT", "10", "is too small"),
        ("HOPX_EXEC_TIMEOUT", "-1", "is too small"),
        ("HOPX_EXEC_TIMEOUT", "nan", "is not a number"),
        ("HOPX_EXEC_TIMEOUT", "inf", "is not a number"),
        ("HOPX_PING_INTERVAL", "0", "is too small"),
        ("HOPX_PING_TIMEOUT", "20s", "is not a number"),
    ],
)
def test_bad_numbers(name, raw, words):
    with pytest.raises(ConfigError) as info:
        from_env({name: raw})
    assert f"{name}={raw!r} {words}" in info.value.line()
    assert info.value.hint  # says what to do


def test_timeouts():
    config = from_env(
        {
            "HOPX_SANDBOX_TIMEOUT": "600",
            "HOPX_EXEC_TIMEOUT": "30.5",
            "HOPX_PING_INTERVAL": "5",
            "HOPX_PING_TIMEOUT": "0.5",
        }
    )
    assert config.sandbox_timeout == 600 and isinstance(config.sandbox_timeout, int)
    assert config.exec_timeout == 30.5
    assert (config.ping_interval, config.ping_timeout) == (5.0, 0.5)
    assert from_env({"HOPX_EXEC_TIMEOUT": "0"}).exec_timeout is None  # 0: no timeout sent
    assert from_env({"HOPX_EXEC_TIMEOUT": "  "}).exec_timeout is None


def test_workdir():
    assert from_env({"HOPX_WORKDIR": "/workspace/proj"}).workdir == "/workspace/proj"


def test_hopx_env_object():
    config = from_env({"HOPX_ENV": '{"A": "1", "B": 2, "C": true, "D": "é"}'})
    assert config.env == {"A": "1", "B": "2", "C": "true", "D": "é"}


@pytest.mark.parametrize(
    "raw, words",
    [
        ("[1, 2]", "must be a JSON object"),
        ('"A=1"', "must be a JSON object"),
        ("{A: 1}", "is not valid JSON"),
    ],
)
def test_hopx_env_invalid(raw, words):
    with pytest.raises(ConfigError, match=words) as info:
        from_env({"HOPX_ENV": raw})
    assert '{"NAME": "value"}' in info.value.line()


def test_repr_never_shows_the_api_key():
    config = from_env({"HOPX_API_KEY": "hopx_live_SECRET123", "HOPX_SANDBOX_ID": "sbx_1"})
    assert "SECRET123" not in repr(config)
    assert "SECRET123" not in str(config)
    assert "sbx_1" in repr(config)


@pytest.mark.parametrize(("raw", "level"), [("", "WARNING"), ("debug", "DEBUG"), (" Error ", "ERROR")])
def test_log_level(raw, level):
    assert from_env({"HOPX_LOG_LEVEL": raw}).log_level == level


def test_bad_log_level_is_a_config_error():
    with pytest.raises(ConfigError) as info:
        from_env({"HOPX_LOG_LEVEL": "verbose"})
    assert info.value.line() == (
        "HOPX_LOG_LEVEL='verbose' is not a log level. Use one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
    )


def test_ca_bundle_from_hopx_ca_bundle_then_ssl_cert_file():
    assert from_env({}).ca_bundle is None
    assert from_env({"SSL_CERT_FILE": "/etc/s.pem"}).ca_bundle == "/etc/s.pem"
    assert from_env({"HOPX_CA_BUNDLE": "/h.pem", "SSL_CERT_FILE": "/etc/s.pem"}).ca_bundle == "/h.pem"
    assert from_env({"HOPX_CA_BUNDLE": " ", "SSL_CERT_FILE": ""}).ca_bundle is None


def test_local_caps():
    config = from_env({"HOPX_LOCAL_MEMORY_MB": "512", "HOPX_LOCAL_MAX_PROCS": " 64 "})
    assert (config.local_memory_mb, config.local_max_procs) == (512, 64)
    assert (Config().local_memory_mb, Config().local_max_procs) == (None, None)


@pytest.mark.parametrize(
    ("name", "raw", "line"),
    [
        (
            "HOPX_LOCAL_MEMORY_MB",
            "lots",
            "HOPX_LOCAL_MEMORY_MB='lots' is not a number. Set it to a whole number of MB.",
        ),
        ("HOPX_LOCAL_MAX_PROCS", "0", "HOPX_LOCAL_MAX_PROCS='0' is too small. Use a value of at least 1."),
    ],
)
def test_bad_local_caps_are_config_errors(name, raw, line):
    with pytest.raises(ConfigError) as info:
        from_env({name: raw})
    assert info.value.line() == line
