"""MQTT over TLS with username/password, against a broker configured for them."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.app import Gateway
from simulators.broker import Mosquitto
from simulators.mqtt_client import MqttTriggerClient
from tests.conftest import ROOT, first_frame, make_config

PREFIX = "gateway/secure"


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, server_pem, server_key_pem = (
        folder / n for n in ("ca.pem", "server.pem", "server.key")
    )
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_pem.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, server_key_pem)
    return ca_pem, server_pem, server_key_pem


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    ca, cert, key = make_certificates(tmp_path)
    passwords = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "inspector", "s3cret"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    passwords.chmod(0o600)
    broker = Mosquitto(
        tmp_path,
        f"allow_anonymous false\npassword_file {passwords}\n"
        f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\n",
    )
    broker.start()
    try:
        yield broker, ca
    finally:
        broker.stop()


def secure_gateway(broker: Mosquitto, ca: Path, password: str) -> Gateway:
    config = make_config(
        gateway_id="secure",
        mqtt={
            "enabled": True,
            "host": "127.0.0.1",
            "port": broker.port,
            "username": "inspector",
            "password": password,
            "tls": {"ca_file": str(ca)},
        },
    )
    return Gateway(config, config_dir=ROOT)


async def test_tls_with_username_and_password(secure_broker: tuple[Mosquitto, Path]) -> None:
    broker, ca = secure_broker
    async with secure_gateway(broker, ca, "s3cret") as gateway:
        assert gateway.mqtt is not None and gateway.mqtt.connected
        await first_frame(gateway)
        with MqttTriggerClient(
            "127.0.0.1",
            broker.port,
            prefix=PREFIX,
            username="inspector",
            password="s3cret",
            tls_ca=str(ca),
        ) as sim:
            answer = await asyncio.to_thread(sim.trigger, "cam", {"trigger_id": "tls-1"})
        assert answer["success"] is True and answer["trigger_id"] == "tls-1"


async def test_wrong_password_is_refused(secure_broker: tuple[Mosquitto, Path]) -> None:
    broker, ca = secure_broker
    with pytest.raises(ConnectionRefusedError, match=r"Not authorized|Bad user name or password"):
        MqttTriggerClient(
            "127.0.0.1",
            broker.port,
            prefix=PREFIX,
            username="inspector",
            password="wrong",
            tls_ca=str(ca),
        ).__enter__()
    async with secure_gateway(broker, ca, "wrong") as gateway:
        assert gateway.mqtt is not None and not gateway.mqtt.connected  # it keeps retrying
        assert gateway.http is not None  # and the rest of the gateway serves
