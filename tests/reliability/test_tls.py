"""TLS as a first-class path: ``hopx-kernel serve --tls-cert/--tls-key`` with a test CA
(trustme); the kernel trusts ``HOPX_CA_BUNDLE``, and a certificate it cannot trust is one
clear error line naming the problem, with the kernel still usable afterwards."""

from __future__ import annotations

import pytest

from ..support.kernels import execute
from ..support.local_server import start_server
from ..support.reliability import cloud_env, kernel

trustme = pytest.importorskip("trustme")


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def _tls_server(tmp, ca, *hosts: str):
    cert = ca.issue_cert(*hosts)
    pem = tmp / f"server-{hosts[0]}.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    return start_server("--tls-cert", str(pem), "--tls-key", str(pem))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, ca):
    server = _tls_server(tmp_path_factory.mktemp("tls"), ca, "127.0.0.1", "localhost")
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory, ca):
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _env(server, **extra):
    # no SSL_CERT_FILE from the machine: the test decides what is trusted
    return cloud_env(server, SSL_CERT_FILE="", **extra)


def test_https_and_wss_with_the_ca_in_HOPX_CA_BUNDLE(tls_server, ca_file):
    assert tls_server.base_url.startswith("https://127.0.0.1:")
    with kernel(_env(tls_server, HOPX_CA_BUNDLE=ca_file)) as (_, kc):
        assert execute(kc, "x = 6").status == "ok"
        for k in range(5):  # back-to-back, on the warm wss socket
            cell = execute(kc, f"print(x * {k}, flush=True)\nimport sys; sys.stderr.write('e{k}')")
            assert cell.status == "ok", cell.reply
            assert cell.stream("stdout") == f"{6 * k}\n" and cell.stream("stderr") == f"e{k}"


def test_untrusted_certificate_is_one_clear_error(tls_server):
    """The system store does not know the test CA: the first cell says so, in one line."""
    with kernel(_env(tls_server)) as (_, kc):
        cell = execute(kc, "print('never')")
        assert cell.status == "error"
        assert cell.stream() == ""
        error = cell.of("error")[0]
        host = tls_server.base_url.split("://", 1)[1]
        assert error["ename"] == "HopxTlsError"
        assert error["evalue"] == (
            f"Could not connect securely: the TLS certificate of {host} is signed by a CA that"
            " is not trusted. Set HOPX_CA_BUNDLE to a PEM file with the CA that signs it (or fix"
            " the server's certificate), then restart the kernel."
        )
        assert "\n" not in error["evalue"]
        again = execute(kc, "1")  # still answers, with the same clear error
        assert again.status == "error" and again.of("error")[0]["ename"] == "HopxTlsError"


def test_certificate_for_another_host_names_the_mismatch(tmp_path, ca, ca_file):
    server = _tls_server(tmp_path, ca, "sandbox.example.org")
    try:
        with kernel(_env(server, HOPX_CA_BUNDLE=ca_file)) as (_, kc):
            cell = execute(kc, "1")
            error = cell.of("error")[0]
            assert error["ename"] == "HopxTlsError"
            host = server.base_url.split("://", 1)[1]
            assert error["evalue"].startswith(
                f"Could not connect securely: the TLS certificate of {host} is not for that host name"
            )
    finally:
        assert server.stop() == 0


def test_unreadable_ca_bundle_is_a_config_error(tls_server, tmp_path):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not a certificate\n")
    with kernel(_env(tls_server, HOPX_CA_BUNDLE=str(bad))) as (_, kc):
        error = execute(kc, "1").of("error")[0]
        assert error["ename"] == "HopxConfigError", error
        assert "cannot be read as PEM certificates" in error["evalue"]


def test_the_kernel_channel_uses_the_same_trust(tls_server, ca_file):
    """``/kernel/channel`` (comms, widgets) is wss too: comm_info is answered by the
    sandbox's kernel through it, so a comm the sandbox opened is listed."""
    with kernel(_env(tls_server, HOPX_CA_BUNDLE=ca_file)) as (_, kc):
        cell = execute(kc, "from comm import create_comm\nc = create_comm(target_name='tls-check')")
        assert cell.status == "ok", cell.reply
        msg_id = kc.comm_info()
        reply = kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        comms = reply["content"]["comms"]
        assert [c["target_name"] for c in comms.values()] == ["tls-check"], comms
