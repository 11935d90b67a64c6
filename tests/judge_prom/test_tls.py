"""Prometheus over HTTPS: a CA bundle verifies it, an unknown CA is refused (inconclusive,
never a pass), ``insecure_skip_verify`` connects without verifying, and an unreadable CA
file is a configuration problem of the round."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.judge.settings import JudgeSettings
from exporter.judge.source_settings import PrometheusTLSSettings
from tests.judge.samples import BOUNDS
from tests.judge_prom.fakeprom import FakePrometheus
from tests.judge_prom.test_source import LONG, NOW, SHORT, errors, fleet, source_for


def _cert(subject: str, issuer: str, issuer_key, key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca_key, other_key, key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    (tmp_path / "ca.pem").write_bytes(_pem(_cert("ca", "ca", ca_key, ca_key, ca=True)))
    (tmp_path / "other.pem").write_bytes(_pem(_cert("other", "other", other_key, other_key,
                                                    ca=True)))
    (tmp_path / "server.pem").write_bytes(_pem(_cert("prometheus", "ca", ca_key, key, ca=False)))
    (tmp_path / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return {name: str(tmp_path / f"{name}.pem") for name in ("ca", "other", "server")} | {
        "key": str(tmp_path / "server.key")}


@pytest.fixture
async def https_prom(pki) -> AsyncIterator[FakePrometheus]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki["server"], pki["key"])
    async with FakePrometheus(JudgeSettings(), NOW, BOUNDS, ssl_context=context) as fake:
        fake.set_window(SHORT, fleet(1))
        fake.set_window(LONG, fleet(6))
        yield fake


async def test_the_ca_bundle_verifies_prometheus(https_prom, pki):
    source, _ = source_for(https_prom.url, tls=PrometheusTLSSettings(ca_file=pki["ca"]))
    evidence = await source.evidence(NOW)
    assert evidence.problem is None and evidence.services


async def test_a_certificate_from_another_ca_is_refused(https_prom, pki):
    source, registry = source_for(https_prom.url, tls=PrometheusTLSSettings(ca_file=pki["other"]))
    evidence = await source.evidence(NOW)
    assert evidence.problem.startswith("Prometheus unreachable")
    assert "certificate" in evidence.problem.lower()
    assert errors(registry, "unreachable") == 1


async def test_insecure_skip_verify_connects_without_verifying(https_prom):
    source, _ = source_for(https_prom.url, tls=PrometheusTLSSettings(insecure_skip_verify=True))
    assert (await source.evidence(NOW)).problem is None


async def test_an_unreadable_ca_file_is_a_configuration_problem(https_prom, tmp_path: Path):
    source, registry = source_for(https_prom.url,
                                  tls=PrometheusTLSSettings(ca_file=str(tmp_path / "none.pem")))
    evidence = await source.evidence(NOW)
    assert "cannot load the CA bundle" in evidence.problem
    assert errors(registry, "config") == 1
