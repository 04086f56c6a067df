"""The one Argon2id definition for PINs, passwords, badges and the keys sealed under them.

Its own module, importing nothing of ours: sign-in (console.signin), the sealing of approvers'
keys (console.approval_signing) and the demo builder all use it.
"""
from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher, Type


@cache
def password_hasher() -> PasswordHasher:
    """The one Argon2id definition for PINs, passwords and badges (the demo builder uses it too).

    RFC 9106's low-memory profile (64 MiB, 3 passes, 4 lanes), spelled out rather than taken from
    the library's defaults so that a library upgrade cannot quietly change it; it is above
    OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane). Hashes made with other parameters
    are rehashed at the next successful sign-in.
    """
    return PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4, hash_len=32, salt_len=16,
                          type=Type.ID)
