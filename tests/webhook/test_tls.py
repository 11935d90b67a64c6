"""mTLS on the webhook listener: certificates made on the fly, a real TLS server on 127.0.0.1.

Matrix: client with a certificate from the client CA -> 200; client without a
certificate -> handshake refused; client certificate from another CA -> refused;
TLS without client_ca_file accepts clients without certificates.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from exporter.webhook.receiver import build_ssl_context
from exporter.webhook.settings import WebhookTlsSettings

from .conftest import DATA, TOKEN


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool = False, server: bool = False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key=None) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(path)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    out = {}
    for ca_name in ("ca", "other-ca"):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert(ca_name, ca_key, _name(ca_name), ca_key, ca=True)
        out[ca_name] = _write(tmp_path / f"{ca_name}.pem", ca)
        out[f"{ca_name}-key"] = ca_key
        out[f"{ca_name}-name"] = _name(ca_name)
    for leaf, issuer, server in (("server", "ca", True), ("client", "ca", False),
                                 ("stranger", "other-ca", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(leaf, out[f"{issuer}-key"], out[f"{issuer}-name"], key, server=server)
        out[leaf] = _write(tmp_path / f"{leaf}.pem", cert, key)
        out[f"{leaf}.key"] = str(tmp_path / f"{leaf}.key")
    return out


async def _serve(context: ssl.SSLContext):
    async def hook(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/webhook/alertmanager", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"https://127.0.0.1:{port}/webhook/alertmanager"


def _client_context(pki, leaf: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca"])
    if leaf:
        context.load_cert_chain(pki[leaf], pki[f"{leaf}.key"])
    return context


async def _post(url: str, context: ssl.SSLContext) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=(DATA / "firing.json").read_bytes(), ssl=context,
                                headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            return resp.status


async def test_mtls_requires_a_client_certificate_from_the_ca(pki):
    settings = WebhookTlsSettings(cert_file=pki["server"], key_file=pki["server.key"], client_ca_file=pki["ca"])
    runner, url = await _serve(build_ssl_context(settings))
    try:
        assert await _post(url, _client_context(pki, "client")) == 200
        with pytest.raises(aiohttp.ClientError):
            await _post(url, _client_context(pki, None))
        with pytest.raises(aiohttp.ClientError):
            await _post(url, _client_context(pki, "stranger"))
    finally:
        await runner.cleanup()


async def test_tls_without_client_ca_accepts_any_client(pki):
    settings = WebhookTlsSettings(cert_file=pki["server"], key_file=pki["server.key"])
    runner, url = await _serve(build_ssl_context(settings))
    try:
        assert await _post(url, _client_context(pki, None)) == 200
    finally:
        await runner.cleanup()
