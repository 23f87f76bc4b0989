"""Bearer-token auth. Tokens are kept only as SHA-256 hashes and checked in constant time.

Token entries (``CURATOR_TOKENS`` or ``CURATOR_TOKENS_FILE``, one per line there) are ``NAME:sha256:HEX``
(preferred: nothing secret at rest) or ``NAME:TOKEN``; ``NAME+admin:...`` gives the token the admin role.
``python -m api.auth NAME [--admin]`` prints a fresh token and the line to store.

The name is the caller's identity (the ``Principal``): every job belongs to the name that submitted it, and
a token sees, reads, cancels and retries only its own name's jobs; an admin sees every job. Several entries
may share a name (e.g. an old and a new token while rotating); they then share the jobs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

log = logging.getLogger("api.auth")

_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
ROLES = frozenset({"admin"})
_HASHED = re.compile(r"^sha256:([0-9a-f]{64})$")


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class Principal:
    name: str
    admin: bool = False

    def may_access(self, owner: str) -> bool:
        """Whether this caller may see and act on a job of ``owner``."""
        return self.admin or owner == self.name


@dataclass(frozen=True)
class TokenEntry:
    name: str
    digest: bytes
    admin: bool = False


class TokenError(ValueError):
    pass


def parse_entry(entry: str) -> TokenEntry:
    """``NAME[+ROLE]:sha256:HEX`` or ``NAME[+ROLE]:TOKEN`` -> a TokenEntry (ROLE: ``admin``)."""
    head, sep, secret = entry.strip().partition(":")
    name, plus, role = head.partition("+")
    if not sep or not _NAME.match(name) or not secret:
        # never echo the entry: without a valid NAME: prefix, all of it may be the secret
        got = f"{name!r} with no token" if sep and _NAME.match(name) else "an entry without a valid NAME: prefix"
        raise TokenError(
            f"token entry must be NAME:TOKEN or NAME:sha256:HEX (name [A-Za-z0-9_.@-], optionally NAME+admin); "
            f"got {got}"
        )
    if plus and role not in ROLES:
        raise TokenError(f"token entry for {name!r}: unknown role after '+' (known: {', '.join(sorted(ROLES))})")
    m = _HASHED.match(secret)
    return TokenEntry(name, bytes.fromhex(m.group(1)) if m else hash_token(secret), role == "admin")


class TokenAuth:
    """Holds (name, hash) pairs; ``check`` compares a presented token against every hash."""

    def __init__(self, entries: list[str], *, disabled: bool = False) -> None:
        self.disabled = disabled
        self.tokens: list[TokenEntry] = [parse_entry(e) for e in entries]

    @classmethod
    def from_settings(cls, settings) -> TokenAuth:
        entries = list(settings.tokens)
        if settings.tokens_file:
            for line in Path(settings.tokens_file).read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    entries.append(line)
        return cls(entries, disabled=settings.auth_disabled)

    def check(self, token: str) -> Principal | None:
        digest = hash_token(token)
        found: TokenEntry | None = None
        for entry in self.tokens:  # no early exit: time does not depend on which token matched
            if hmac.compare_digest(digest, entry.digest) and found is None:
                found = entry
        return Principal(found.name, found.admin) if found else None

    def authenticate(self, request: Request) -> Principal:
        if self.disabled:  # one anonymous caller who sees everything
            return Principal("anonymous", admin=True)
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        principal = self.check(token.strip())
        if principal is None:
            raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return principal


_bearer = HTTPBearer(auto_error=False, description="a token from CURATOR_TOKENS / CURATOR_TOKENS_FILE")


async def require_principal(
    request: Request, _creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """FastAPI dependency (async: cheap, no thread hop): the authenticated caller (401 otherwise).
    ``_creds`` declares the scheme in the OpenAPI schema; the header is parsed in ``authenticate``."""
    return request.app.state.auth.authenticate(request)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    admin = "--admin" in args
    args = [a for a in args if a != "--admin"]
    if len(args) != 1 or not _NAME.match(args[0]):
        print(
            "usage: python -m api.auth NAME [--admin]   (prints a new token and its NAME:sha256:HEX line)",
            file=sys.stderr,
        )
        return 2
    token = secrets.token_urlsafe(32)
    print(f"token: {token}")
    print(f"store: {args[0]}{'+admin' if admin else ''}:sha256:{hash_token(token).hex()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
