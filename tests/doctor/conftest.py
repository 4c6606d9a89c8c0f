"""Fixtures for the `--check` and client-config tests: peer servers on 127.0.0.1 as subprocesses.

Peers start the one way (`tests/peers.py`): a bounded wait on their `READY` line, stopped at teardown.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import REPO_ROOT, PeerProcesses

__all__ = ["REPO_ROOT", "Certificate", "Peer", "free_port", "make_self_signed"]


@dataclass(frozen=True)
class Peer:
    """A running test peer: its base URL (scheme, host and port, no path)."""

    base: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def start_peer(session_peer_processes: PeerProcesses) -> Callable[..., Peer]:
    """`start_peer(kind, *args, scheme="http")` → a running `Peer`; all are stopped at the session's end."""

    def start(kind: str, *args: str, scheme: str = "http") -> Peer:
        server = session_peer_processes.start("tests.doctor.peers", kind, *args, scheme=scheme)
        return Peer(server.base_url, server.process)

    return start


@pytest.fixture(scope="session")
def streamable_peer(start_peer) -> Peer:
    return start_peer("streamable")


@pytest.fixture(scope="session")
def stateless_peer(start_peer) -> Peer:
    return start_peer("stateless")


@pytest.fixture(scope="session")
def sse_peer(start_peer) -> Peer:
    return start_peer("sse")


@pytest.fixture(scope="session")
def unauthorized_peer(start_peer) -> Peer:
    return start_peer("unauthorized")


@dataclass(frozen=True)
class Certificate:
    certfile: Path
    keyfile: Path


def make_self_signed(directory: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost (a CA certificate: it is its own anchor)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "doctor-test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    certfile = directory / "server.pem"
    keyfile = directory / "server.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(certfile, keyfile)


@pytest.fixture(scope="session")
def tls_peer(start_peer, tmp_path_factory) -> tuple[Peer, Certificate]:
    certificate = make_self_signed(tmp_path_factory.mktemp("tls"))
    peer = start_peer(
        "streamable",
        "--certfile",
        str(certificate.certfile),
        "--keyfile",
        str(certificate.keyfile),
        scheme="https",
    )
    return peer, certificate


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
