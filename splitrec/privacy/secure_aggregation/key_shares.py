"""Each feature party's X25519 key for a job, and the signed shares of its
public half that travel through the label party.

A share is signed with the key of the sender's TLS certificate (ECDSA-SHA256
over the job, the party and the public key) and carries that certificate. A
receiver accepts it only when the certificate was issued by its own CA, is
valid now, names the identity the job gives the party, and verifies the
signature. Without TLS (``tls: {insecure: true}``) shares travel unsigned and
nothing stops the label party from substituting one: the party says so once.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from splitrec.common.atomic import write_atomically
from splitrec.common.errors import NotAllowedError
from splitrec.security.tls import Credentials

logger = logging.getLogger(__name__)

_CONTEXT = b"splitrec key share v1"
_KEY_FILE_MODE = 0o600


@dataclass(frozen=True)
class KeyShare:
    """A feature party's public key for one job, as it signed it."""

    job_id: str
    party: str
    public_key: bytes
    certificate: bytes = b""
    signature: bytes = b""


def _signed_bytes(job_id: str, party: str, public_key: bytes) -> bytes:
    return b"\0".join([_CONTEXT, job_id.encode(), party.encode(), public_key])


def make_share(
    job_id: str, party: str, public_key: bytes, credentials: Credentials | None
) -> KeyShare:
    """``public_key`` signed with the party's TLS key (unsigned without TLS)."""
    if credentials is None:
        return KeyShare(job_id, party, public_key)
    key = serialization.load_pem_private_key(credentials.key, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise NotAllowedError(
            f"party {party}: secure aggregation signs key shares with ECDSA, but "
            f"the TLS key is a {type(key).__name__}; issue an EC key (make certs)"
        )
    signature = key.sign(
        _signed_bytes(job_id, party, public_key), ec.ECDSA(hashes.SHA256())
    )
    return KeyShare(job_id, party, public_key, credentials.cert, signature)


def _names(cert: x509.Certificate) -> set[str]:
    names = {
        str(a.value)
        for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    }
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.update(alt.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    return names


def check_share(
    share: KeyShare,
    job_id: str,
    party: str,
    identity: str,
    credentials: Credentials | None,
    receiver: str,
) -> None:
    """Refuses (``NotAllowedError``) a share that is not ``party``'s for
    ``job_id``, signed by a certificate of ``identity`` from the receiver's CA.
    Without TLS at the receiver only the names and the key's length are
    checked."""
    where = f"party {receiver}: the key share of party {party!r}"
    if share.job_id != job_id or share.party != party:
        raise NotAllowedError(
            f"{where} is for job {share.job_id!r} party {share.party!r}; refused"
        )
    if len(share.public_key) != 32:
        raise NotAllowedError(
            f"{where} holds a {len(share.public_key)}-byte key; X25519 keys have 32"
        )
    if credentials is None:
        return
    if not share.signature or not share.certificate:
        raise NotAllowedError(
            f"{where} is not signed; with TLS every feature party signs its share "
            "(is TLS off at that party?)"
        )
    try:
        cert = x509.load_pem_x509_certificate(share.certificate)
        ca = x509.load_pem_x509_certificate(credentials.ca)
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise NotAllowedError(
            f"{where} comes with a certificate that this party's CA did not issue; "
            "refused (the label party may have substituted it)"
        ) from None
    now = datetime.datetime.now(datetime.UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise NotAllowedError(f"{where} comes with a certificate that is not valid now")
    if identity not in _names(cert):
        raise NotAllowedError(
            f"{where} is signed by a certificate of {sorted(_names(cert))}, not of "
            f"{identity!r}; refused (the label party may have substituted it)"
        )
    public = cert.public_key()
    try:
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise InvalidSignature
        public.verify(
            share.signature,
            _signed_bytes(job_id, party, share.public_key),
            ec.ECDSA(hashes.SHA256()),
        )
    except InvalidSignature:
        raise NotAllowedError(
            f"{where} does not carry a valid signature of its public key; refused "
            "(the label party may have substituted the key)"
        ) from None


def shares_digest(shares: Sequence[KeyShare]) -> bytes:
    """One digest of a set of shares (any order): what a masked tensor names."""
    parts = sorted(s.party.encode() + b"=" + s.public_key for s in shares)
    return hashlib.sha256(b"\0".join(parts)).digest()[:16]


def job_secret(path: Path, binding: str) -> X25519PrivateKey:
    """The party's X25519 key for a job, kept in ``path`` (mode 0600).

    The same key comes back while ``binding`` (a digest of the job's spec and
    the party's data) is unchanged, so a job recovered after this process
    died draws the masks it drew before; any change gets a new key, so no
    mask is ever reused over other values.
    """
    try:
        stored = path.read_text().split()
    except OSError:
        stored = []
    if len(stored) == 2 and stored[0] == binding:
        try:
            return X25519PrivateKey.from_private_bytes(bytes.fromhex(stored[1]))
        except ValueError:
            logger.warning("%s holds no usable key; making a new one", path)
    secret = X25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = secret.private_bytes_raw().hex()
    write_atomically(path, f"{binding}\n{raw}\n", _KEY_FILE_MODE)
    return secret
