"""https receivers: the connection goes to the checked address while TLS names the host (SNI) and checks
the certificate against that name, so pinning the address weakens neither."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aitip.catalog import Catalog
from aitip.webhooks import verify
from aitip.webhooks.models import SubscriptionCreate
from aitip.webhooks.service import WebhookService
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .conftest import MAY, WAIT, make_dispatcher, serve


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _certificates(folder: Path) -> tuple[Path, ssl.SSLContext, list[str]]:
    """A throw-away CA, and a server context whose certificate (from that CA) names only ``localhost``;
    the list fills with the server names clients ask for (SNI)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AITIP webhook test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (folder / "ca.pem").write_bytes(_pem(ca))
    (folder / "server.pem").write_bytes(_pem(leaf))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(folder / "server.pem", folder / "server.key")
    names: list[str] = []
    server.sni_callback = lambda _socket, name, _context: names.append(name)
    return folder / "ca.pem", server, names


@pytest.mark.asyncio
async def test_https_connects_to_the_checked_address_and_checks_the_certificate_for_the_name(
        catalog: Catalog, projects, tmp_path: Path) -> None:
    ca_file, server_context, server_names = _certificates(tmp_path)
    dispatcher = make_dispatcher(catalog, allowed_networks=["127.0.0.0/8", "::1/128"], ca_file=str(ca_file))
    webhooks = WebhookService(catalog, dispatcher)
    async with serve(server_context) as receiver:
        await dispatcher.start()
        try:
            by_name = await webhooks.subscribe(MAY, "alpha", SubscriptionCreate(
                url=receiver.url("/by-name", host="localhost").replace("http:", "https:"), events=["job.*"]))
            [named] = await webhooks.publish("alpha", "job.succeeded", {"id": 1})
            assert await dispatcher.wait_settled(named, WAIT) == "delivered"
            # The certificate does not name 127.0.0.1: a request to the address alone cannot pass the check.
            await webhooks.subscribe(MAY, "alpha", SubscriptionCreate(
                url=receiver.url("/by-address").replace("http:", "https:"), events=["sweep.*"]))
            [unnamed] = await webhooks.publish("alpha", "sweep.succeeded", {"id": 2})
            assert await dispatcher.wait_settled(unnamed, WAIT) == "failed"
        finally:
            await dispatcher.stop()
    [request] = receiver.requests
    assert request.path == "/by-name" and request.headers["Host"] == f"localhost:{receiver.port}"
    verify(by_name.secret, request.headers, request.body)
    assert "localhost" in server_names
    deliveries = {d.id: d for d in (await webhooks.deliveries(MAY, "alpha")).items}
    assert deliveries[named].attempt_log[0].address == "127.0.0.1"
    assert "CERTIFICATE_VERIFY_FAILED" in deliveries[unnamed].last_error
