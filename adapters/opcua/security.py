"""OPC UA security: password hashes, the user manager, and the server's own certificate.

Passwords in the config are scrypt hashes (`gateway hash-password`), or plain values taken from
the environment; both are compared in constant time. The server's certificate and key are made
on first run in `pki_dir` and kept, so clients that trusted it keep trusting it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import structlog
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from asyncua.ua.status_codes import StatusCodes
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.config import OpcuaUser

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1

log = structlog.get_logger(__name__)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (base64), for `opcua.security.users[].password_hash`."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


class GatewayUserManager(UserManager):
    """Users from the config; anonymous only when the config allows it."""

    def __init__(self, users: list[OpcuaUser], allow_anonymous: bool) -> None:
        self._users = {user.username: user for user in users}
        self._allow_anonymous = allow_anonymous
        self.refused = 0

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User) if self._allow_anonymous else self._refuse()
        user = self._users.get(username)
        if user is None or not self._matches(user, password or ""):
            return self._refuse()
        return User(role=UserRole.User, name=username)

    def _refuse(self) -> User | None:
        self.refused += 1
        return None

    @staticmethod
    def _matches(user: OpcuaUser, password: str) -> bool:
        if user.password_hash is not None:
            return verify_password(password, user.password_hash.get_secret_value())
        assert user.password is not None
        return hmac.compare_digest(password.encode(), user.password.get_secret_value().encode())


async def server_certificate(pki_dir: Path, app_uri: str) -> tuple[Path, Path]:
    """The server's certificate (DER) and key (PEM), made on first run and kept."""
    pki_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, at startup)
    (pki_dir / "trusted").mkdir(exist_ok=True)
    cert, key = pki_dir / "server-cert.der", pki_dir / "server-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        app_uri,
        socket.gethostname(),
        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "inspection gateway", "organizationName": "inspection gateway"},
    )
    return cert, key


POLICY: Final = MappingProxyType(
    {
        "None": ua.SecurityPolicyType.NoSecurity,
        "Basic256Sha256_Sign": ua.SecurityPolicyType.Basic256Sha256_Sign,
        "Basic256Sha256_SignAndEncrypt": ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    }
)


async def _refuse_every_client(certificate: Any, application: Any) -> None:
    raise ServiceError(StatusCodes.BadCertificateUntrusted)


async def trusted_clients(pki_dir: Path) -> Any:
    """A validator that accepts only client certificates in `pki_dir/trusted/`."""
    trusted = pki_dir / "trusted"
    if not any(trusted.iterdir()):
        log.warning(
            "opcua: no trusted client certificates yet; secure clients are refused until their "
            "certificate is copied into the trusted folder",
            trusted=str(trusted),
        )
        return _refuse_every_client
    store = TrustStore([trusted], [])
    await store.load()
    return CertificateValidator(
        CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT,
        store,
    )
