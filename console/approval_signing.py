"""A supervisor's verdict carries proof that only they could make it: an Ed25519 signature.

Why a signature and not the name in the approval row: a station's database, its outbox and the
context a service is called with are all the station's word, and a clerk (or anyone with the
file) can put a supervisor's id in any of them. A signature needs the supervisor's private key,
and the key is kept only sealed under their PIN or badge, so it opens only while they sign in.

- **Keys.** One key pair per supervisor, station and way of signing in (``pin``, ``badge``):
  sealing one key under both would need the PIN and the badge at once whenever either changes.
  A sign-in whose secret opens no key of theirs here (the first sign-in of this version, a new
  PIN or badge) enrols a new one and retires the old, whose seal is deleted. The private half is
  sealed with ChaCha20-Poly1305 under a key derived from the secret with Argon2id (the same
  parameters as PIN hashes, its own random salt), bound to the key's id and user so a seal
  cannot be moved to another user's row. Only approvers (supervisors, admins) get keys.
- **Central.** The public half goes to central in an outbox event (``approver_key``). Central
  takes no key on a station's word: it counts only once a central admin confirms it
  (``returns-console central keys confirm``), so a station that mints a key for a supervisor
  (a rogue admin there, or an edited file) still signs nothing central accepts.
- **What is signed.** The canonical JSON of the verdict: approval, case, supervisor, station,
  verdict, amount and currency, time, what it settles (each unit's refund) and the note's
  SHA-256. Central (migration 0011) checks the signature with the confirmed key and that the
  approval row says the same; otherwise it refuses the approval and flags it.
- **Retiring.** A new PIN or badge retires the old key here and sends that to central, which
  refuses what the old key signs from then on (a station may retire its keys, nothing more).
- **What it does not stop.** Whoever copies a station's file can try PINs against it offline
  (the Argon2id cost is the only brake: about 0.12 s a guess here, so a 4-digit PIN falls in
  about 20 minutes on one core). Supervisors should use long PINs or passphrases, and an admin
  revokes a key at central (`central keys revoke`) when a station's file may have left it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from argon2 import Type
from argon2.exceptions import Argon2Error
from argon2.low_level import hash_secret_raw
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import APPROVER_ROLES, SIGNING_METHODS, ApproverKey, SealedKey, User

SEAL_SCHEME = "argon2id+chacha20poly1305/v1"
MESSAGE_VERSION = 1


@dataclass(frozen=True)
class Signer:
    """An approver's unsealed key while they are signed in; never written anywhere."""

    key_id: uuid.UUID
    user_id: int
    station_id: str
    _private: Ed25519PrivateKey = field(repr=False, compare=False)
    enrolled: bool = False  # enrolled at this sign-in: central has yet to confirm it

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def sign(self, message: str) -> str:
        return _b64(self._private.sign(message.encode("utf-8")))

    @property
    def public_key(self) -> str:
        return public_key_text(self._private)


def public_key_text(private: Ed25519PrivateKey) -> str:
    return _b64(private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def fingerprint(public_key: str) -> str:
    """What a supervisor reads at their station and a central admin checks before confirming the
    key: 80 bits of the SHA-256 of the raw public key, ``ABCD-EF01-2345-6789-ABCD`` (central's
    ``rc_fingerprint`` computes the same). A station cannot find another key with the same one."""
    digest = hashlib.sha256(_unb64(public_key)).hexdigest().upper()[:20]
    return "-".join(digest[i:i + 4] for i in range(0, 20, 4))


def normalize_fingerprint(text: str) -> str:
    raw = "".join(ch for ch in text.upper() if ch in "0123456789ABCDEF")
    return "-".join(raw[i:i + 4] for i in range(0, len(raw), 4))


def new_signer(user_id: int, station_id: str) -> Signer:
    """A fresh key pair, not yet stored (``unlock`` stores what it enrols)."""
    return Signer(uuid.uuid4(), user_id, station_id, Ed25519PrivateKey.generate())


# -- sealing ------------------------------------------------------------------------------------

def _kdf_parameters() -> dict[str, int]:
    from console.passwords import password_hasher

    hasher = password_hasher()
    return {"t": hasher.time_cost, "m": hasher.memory_cost, "p": hasher.parallelism}


def _binding(key_id: uuid.UUID, user_id: int) -> bytes:
    return f"returns-console:approver-key:{key_id}:{user_id}".encode()


def seal(signer: Signer, secret: bytes) -> dict[str, Any]:
    """The private key sealed under ``secret``: what ``SealedKey.seal`` holds."""
    params = _kdf_parameters()
    salt, nonce = os.urandom(16), os.urandom(12)
    key = hash_secret_raw(secret, salt, time_cost=params["t"], memory_cost=params["m"], parallelism=params["p"],
                          hash_len=32, type=Type.ID)
    raw = signer._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())  # noqa: SLF001
    box = ChaCha20Poly1305(key).encrypt(nonce, raw, _binding(signer.key_id, signer.user_id))
    return {"scheme": SEAL_SCHEME, **params, "salt": _b64(salt), "nonce": _b64(nonce), "box": _b64(box)}


def unseal(sealed: dict[str, Any], secret: bytes, key_id: uuid.UUID, user_id: int) -> Ed25519PrivateKey | None:
    """The private key, or None when ``secret`` is not the one it was sealed under (or the seal
    is damaged, or of a scheme this version does not know)."""
    try:
        params = _kdf_parameters()
        # Only this version's parameters: a seal edited to cost nothing (or to exhaust the
        # memory) opens nothing, and the next sign-in enrols a new key.
        if sealed.get("scheme") != SEAL_SCHEME or any(sealed.get(k) != v for k, v in params.items()):
            return None
        key = hash_secret_raw(secret, _unb64(sealed["salt"]), time_cost=params["t"], memory_cost=params["m"],
                              parallelism=params["p"], hash_len=32, type=Type.ID)
        raw = ChaCha20Poly1305(key).decrypt(_unb64(sealed["nonce"]), _unb64(sealed["box"]), _binding(key_id, user_id))
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (InvalidTag, KeyError, TypeError, ValueError, AttributeError, Argon2Error):
        return None


# -- keys at the station ------------------------------------------------------------------------

def may_sign(role: str) -> bool:
    return role in APPROVER_ROLES


def unlock(session: Session, user: User, station_id: str, method: str, secret: bytes,
           now: datetime) -> tuple[Signer, list[ApproverKey]]:
    """The approver's signer at this station for this way of signing in, with the keys to send to
    central: none when an existing key opened, else the one enrolled now and those it retired.
    Called once the secret has been checked; writes in the caller's transaction."""
    if method not in SIGNING_METHODS:
        raise ValueError(f"signing method {method!r}")
    current = session.execute(
        select(ApproverKey, SealedKey).join(SealedKey, SealedKey.key_id == ApproverKey.id)
        .where(ApproverKey.user_id == user.id, ApproverKey.station_id == station_id, ApproverKey.method == method,
               ApproverKey.retired_at.is_(None))
        .order_by(ApproverKey.enrolled_at.desc())).first()
    if current is not None:
        key, sealed = current
        private = unseal(sealed.seal, secret, key.id, user.id)
        if private is not None and public_key_text(private) == key.public_key:
            return Signer(key.id, user.id, station_id, private), []
    retired = retire(session, user.id, station_id, method, now)
    signer = replace(new_signer(user.id, station_id), enrolled=True)
    key = ApproverKey(id=signer.key_id, user_id=user.id, station_id=station_id, method=method,
                      public_key=signer.public_key, enrolled_at=now)
    session.add(key)
    session.flush()
    session.add(SealedKey(key_id=key.id, seal=seal(signer, secret)))
    return signer, [*retired, key]


def retire(session: Session, user_id: int, station_id: str | None, method: str,
           now: datetime) -> list[ApproverKey]:
    """Retire the user's live keys for ``method`` here (of ``station_id``, or all this database
    holds) and delete their seals (a new PIN or badge was set, or the badge was taken away):
    nothing at this station can sign with them again."""
    # Only keys sealed here: the feed brings other stations' keys too, which are theirs to retire.
    query = (select(ApproverKey).join(SealedKey, SealedKey.key_id == ApproverKey.id)
             .where(ApproverKey.user_id == user_id, ApproverKey.method == method, ApproverKey.retired_at.is_(None)))
    if station_id is not None:
        query = query.where(ApproverKey.station_id == station_id)
    keys = list(session.scalars(query))
    for key in keys:
        key.retired_at = now
        sealed = session.get(SealedKey, key.id)
        if sealed is not None:
            session.delete(sealed)
    session.flush()
    return keys  # to be sent: central refuses what they sign from then on


# -- what is signed -----------------------------------------------------------------------------

def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware time")
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _canonical(body: dict[str, Any]) -> str:
    """Sorted keys, no spaces, ASCII: central parses it back and compares it field by field."""
    return json.dumps({"v": MESSAGE_VERSION, **body}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _note_sha256(note: str) -> str:
    return hashlib.sha256(note.encode("utf-8")).hexdigest()


def approval_message(*, approval_id: uuid.UUID, decision_id: uuid.UUID, supervisor_id: int, station_id: str,
                     verdict: str, amount_minor: int | None, currency: str, decided_at: datetime,
                     settles: dict[str, Any] | None, note: str) -> str:
    """The canonical text of a verdict on a return (checked by migration 0011)."""
    return _canonical({"what": "approval", "approval": str(approval_id), "decision": str(decision_id),
                       "supervisor": supervisor_id, "station": station_id, "verdict": verdict,
                       "amount_minor": amount_minor, "currency": currency, "decided_at": _utc_text(decided_at),
                       "settles": settles, "note_sha256": _note_sha256(note)})


def claim_verdict_message(*, claim_id: uuid.UUID, supervisor_id: int, station_id: str, status: str,
                          amount_minor: int, currency: str, settled_at: datetime, note: str) -> str:
    """The canonical text of a verdict on a delivery claim (checked by migration 0012)."""
    return _canonical({"what": "claim_verdict", "claim": str(claim_id), "supervisor": supervisor_id,
                       "station": station_id, "status": status, "amount_minor": amount_minor, "currency": currency,
                       "settled_at": _utc_text(settled_at), "note_sha256": _note_sha256(note)})


def disabling_message(*, user_id: int, admin_id: int, station_id: str, at: datetime) -> str:
    """The canonical text of an admin's disabling of a user (checked by migration 0012). Central
    takes each signature once (0014); the nonce makes two disablings of one user in the same second
    two signatures (Ed25519 signs the same text the same way)."""
    return _canonical({"what": "user_disabled", "user": user_id, "admin": admin_id, "station": station_id,
                       "at": _utc_text(at), "nonce": uuid.uuid4().hex})


def signature(signer: Signer, message: str) -> dict[str, Any]:
    """What a ``signature`` column holds: the key, the signed text and the signature."""
    return {"key": str(signer.key_id), "signed": message, "sig": signer.sign(message)}


def sign_approval(signer: Signer, **fields: Any) -> dict[str, Any]:
    return signature(signer, approval_message(**fields))


def own_signer(actor: Any, station_id: str, what: str) -> Signer:
    """The signed-in actor's own open key at this station, or NotAllowed saying how to get it:
    central refuses ``what`` unless its maker signed it, so say so now, not after the sync."""
    from console.errors import NotAllowed

    signer: Signer | None = actor.signer
    if signer is None or signer.user_id != actor.user_id or signer.station_id != station_id:
        raise NotAllowed(f"{what} needs {actor.display_name}'s own signature, which only their PIN or badge "
                         f"opens: sign in again with it [Ctrl+L], then try again.")
    return signer


def verifies(public_key: str, message: str, signature: str) -> bool:
    """Whether ``signature`` is ``public_key``'s over ``message`` (central does the same in SQL)."""
    try:
        Ed25519PublicKey.from_public_bytes(_unb64(public_key)).verify(_unb64(signature), message.encode("utf-8"))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
