"""TLS for the kernel's connections: which CA file to trust, one context per file, and a
failed handshake worded as one line that names the certificate problem.

The system store is trusted unless ``HOPX_CA_BUNDLE`` (or else ``SSL_CERT_FILE``) names a
PEM file (config.py reads them). One :class:`ssl.SSLContext` serves every connection to a
host, so the CA file is parsed once, not per socket.

Example:
    >>> describe_verify_failure("certificate has expired", "h:443")
    'the TLS certificate of h:443 has expired'
"""

from __future__ import annotations

import functools
import ssl

from .errors import ConfigError, TlsError

#: OpenSSL's verify messages (``SSLCertVerificationError.verify_message``) in plain words.
_VERIFY_WORDS = {
    "certificate has expired": "has expired",
    "certificate is not yet valid": "is not valid yet",
    "self-signed certificate": "is self-signed and not trusted",
    "self signed certificate": "is self-signed and not trusted",
    "self-signed certificate in certificate chain": "is signed by a CA that is not trusted",
    "self signed certificate in certificate chain": "is signed by a CA that is not trusted",
    "unable to get local issuer certificate": "is signed by a CA that is not trusted",
    "unable to get issuer certificate": "is signed by a CA that is not trusted",
    "unable to verify the first certificate": "is signed by a CA that is not trusted",
}
HINT = (
    "Set HOPX_CA_BUNDLE to a PEM file with the CA that signs it (or fix the server's "
    "certificate), then restart the kernel."
)


@functools.lru_cache(maxsize=8)
def client_context(ca_bundle: str | None = None) -> ssl.SSLContext:
    """A verifying client context: the system store, or only ``ca_bundle`` when given.

    Raises:
        ConfigError: ``ca_bundle`` cannot be read as PEM certificates.
    """
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"The CA file {ca_bundle!r} (HOPX_CA_BUNDLE or SSL_CERT_FILE) cannot be read as PEM"
            f" certificates ({exc.__class__.__name__})",
            "Point HOPX_CA_BUNDLE at a readable PEM file, or unset it to use the system store.",
        ) from exc


def describe_verify_failure(verify_message: str, where: str) -> str:
    """``where``'s certificate problem in plain words (pure)."""
    msg = (verify_message or "").strip()
    low = msg.lower()
    if low.startswith("hostname mismatch") or "doesn't match" in low or "ip address mismatch" in low:
        return f"the TLS certificate of {where} is not for that host name ({msg})"
    words = _VERIFY_WORDS.get(low)
    if words is not None:
        return f"the TLS certificate of {where} {words}"
    return f"the TLS certificate of {where} was refused ({msg or 'verification failed'})"


def tls_error(exc: BaseException, where: str) -> TlsError | None:
    """The :class:`TlsError` for a handshake failure, or None if ``exc`` is not one."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        text = describe_verify_failure(exc.verify_message or str(exc.reason or ""), where)
    elif isinstance(exc, ssl.SSLError):
        text = f"the TLS handshake with {where} failed ({exc.reason or exc.__class__.__name__})"
    else:
        return None
    return TlsError(f"Could not connect securely: {text}", HINT)


__all__ = ["HINT", "client_context", "describe_verify_failure", "tls_error"]
