"""The one-line wording of TLS handshake failures (pure) and the spare-socket sizing."""

from __future__ import annotations

import ssl

import pytest

from hopx_kernel.agent import MAX_SPARES, spares_wanted
from hopx_kernel.errors import TlsError, Unreachable
from hopx_kernel.tls import describe_verify_failure, tls_error


@pytest.mark.parametrize(
    "message, words",
    [
        ("certificate has expired", "the TLS certificate of h:1 has expired"),
        ("self-signed certificate", "the TLS certificate of h:1 is self-signed and not trusted"),
        (
            "unable to get local issuer certificate",
            "the TLS certificate of h:1 is signed by a CA that is not trusted",
        ),
        (
            "Hostname mismatch, certificate is not valid for 'h'.",
            "the TLS certificate of h:1 is not for that host name (Hostname mismatch, certificate is not valid for 'h'.)",
        ),
        ("something new", "the TLS certificate of h:1 was refused (something new)"),
    ],
)
def test_verify_failures_in_plain_words(message, words):
    assert describe_verify_failure(message, "h:1") == words


def test_tls_error_is_unreachable_and_one_line():
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "certificate has expired"
    err = tls_error(exc, "h:1")
    assert isinstance(err, TlsError) and isinstance(err, Unreachable)
    assert err.line() == (
        "Could not connect securely: the TLS certificate of h:1 has expired. Set "
        "HOPX_CA_BUNDLE to a PEM file with the CA that signs it (or fix the "
        "server's certificate), then restart the kernel."
    )
    assert tls_error(ConnectionRefusedError(), "h:1") is None


@pytest.mark.parametrize(
    "connect, gap, want",
    [
        (0.0007, 0.004, 1),  # loopback: one spare is plenty
        (0.160, 0.090, 3),  # 80 ms RTT, back-to-back: 2 in flight, +1
        (0.240, 0.090, MAX_SPARES),  # with TLS
        (0.300, 30.0, 1),  # a human typing
        (0.0, 0.0, 1),  # nothing measured yet
    ],
)
def test_spares_follow_the_pace_of_cells(connect, gap, want):
    assert spares_wanted(connect, gap) == want
