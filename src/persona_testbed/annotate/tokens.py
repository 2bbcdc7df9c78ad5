"""Unguessable tokens, constant-time checks, signed session cookies and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

# Invitation tokens are `selector.verifier`: the selector finds the slot, the verifier (never
# stored, only its hash) is compared in constant time, so response timing reveals nothing.
SELECTOR_BYTES = 9
VERIFIER_BYTES = 24
PARTICIPANT_COOKIE = "persona_participant"
ADMIN_COOKIE = "persona_admin"
PARTICIPANT_MAX_AGE_S = 60 * 60 * 24 * 60
ADMIN_MAX_AGE_S = 60 * 60 * 12


def hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(value: str, expected_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(value), expected_hash)


@dataclass(frozen=True)
class InvitationToken:
    selector: str
    verifier: str

    @classmethod
    def new(cls) -> InvitationToken:
        return cls(secrets.token_urlsafe(SELECTOR_BYTES), secrets.token_urlsafe(VERIFIER_BYTES))

    @classmethod
    def parse(cls, token: str) -> InvitationToken | None:
        selector, dot, verifier = token.partition(".")
        if not dot or not selector or not verifier or len(token) > 200:
            return None
        return cls(selector, verifier)

    def __str__(self) -> str:
        return f"{self.selector}.{self.verifier}"

    @property
    def verifier_hash(self) -> str:
        return hash_secret(self.verifier)


def new_admin_token() -> str:
    return secrets.token_urlsafe(VERIFIER_BYTES)


def new_completion_code() -> str:
    # Upper-case letters and digits, without look-alikes, as participants may type it.
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(8))


class Signer:
    """Signs cookie payloads and derives CSRF tokens from the server secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._participant = URLSafeTimedSerializer(secret, salt="annotate-participant")
        self._admin = URLSafeTimedSerializer(secret, salt="annotate-admin")

    def participant_cookie(self, slot_pk: int) -> str:
        return str(self._participant.dumps({"slot": slot_pk, "nonce": secrets.token_hex(16)}))

    def read_participant_cookie(self, cookie: str | None) -> tuple[int, str] | None:
        payload = _loads(self._participant, cookie, PARTICIPANT_MAX_AGE_S)
        if payload is None:
            return None
        slot, nonce = payload.get("slot"), payload.get("nonce")
        if not isinstance(slot, int) or not isinstance(nonce, str):
            return None
        return slot, nonce

    def admin_cookie(self, study_id: str) -> str:
        return str(self._admin.dumps({"study": study_id}))

    def read_admin_cookie(self, cookie: str | None) -> str | None:
        payload = _loads(self._admin, cookie, ADMIN_MAX_AGE_S)
        study = None if payload is None else payload.get("study")
        return study if isinstance(study, str) else None

    def csrf_token(self, nonce: str) -> str:
        """Tied to one participant session: a form from another session does not verify."""
        return hmac.new(self._secret, f"csrf|{nonce}".encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, nonce: str, submitted: str | None) -> bool:
        return submitted is not None and hmac.compare_digest(self.csrf_token(nonce), submitted)


def _loads(
    serializer: URLSafeTimedSerializer, cookie: str | None, max_age: int
) -> dict[str, Any] | None:
    if not cookie:
        return None
    try:
        payload = serializer.loads(cookie, max_age=max_age)
    except BadSignature:  # also covers SignatureExpired
        return None
    return payload if isinstance(payload, dict) else None
