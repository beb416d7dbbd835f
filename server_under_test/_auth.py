"""Who may connect and who a socket is: origin check, signed tokens, the mesh's shared secret.

As Phoenix does it, so the reference server is a fair model of what teams deploy:

* `check_origin` (on by default): a websocket upgrade that carries an `Origin` header is refused
  (403) unless the origin's host is the host the request was made to, or one of `--origin`'s.
  A request with no `Origin` is not from a browser page (phoenix.js under Node, the harness):
  it passes, as in Phoenix.
* Signed tokens (`--secret`, like `Phoenix.Token`): `token` in the connect params is
  `base64url(json {"user", "exp"}) "." base64url(HMAC-SHA256)`; a socket's `user_id` (and so its
  `user_socket:<id>` identity, which `kick` and `disconnect` address) comes only from a verified
  token. No token: an anonymous socket. A bad or expired token: refused (403). Without
  `--secret` every socket is anonymous: nobody can claim to be anybody.
* The mesh's shared secret (`--cluster-secret`, like the Erlang cookie): a peer's hello carries
  an HMAC of its name and boot id; a hello from a name not in `--peer`, or with a wrong proof,
  ends the link (logged), before anything it sends is believed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

TOKEN_MAX_AGE = 86_400.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, message: str) -> str:
    return _b64(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def sign(
    secret: str, user: str, *, max_age: float = TOKEN_MAX_AGE, now: float | None = None
) -> str:
    """A token saying `user`, valid for `max_age` seconds."""
    expires = (time.time() if now is None else now) + max_age
    body = _b64(json.dumps({"user": user, "exp": round(expires, 3)}).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(secret: str, token: str, *, now: float | None = None) -> str:
    """The user a token names; ValueError with the reason when it is not valid."""
    body, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(_mac(secret, body), mac):
        raise ValueError("bad token signature")
    try:
        claims = json.loads(_unb64(body))
    except ValueError:
        raise ValueError("bad token body") from None
    user, expires = claims.get("user"), claims.get("exp")
    if not isinstance(user, str) or not user or not isinstance(expires, int | float):
        raise ValueError("bad token claims")
    if expires < (time.time() if now is None else now):
        raise ValueError("expired token")
    return user


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str] = ()) -> bool:
    """`check_origin`: no Origin (not a browser), the request's own host, or an allowed one."""
    if origin is None:
        return True
    origin_host = urlsplit(origin).hostname
    if origin_host is None:
        return False
    request_host = urlsplit(f"//{host}").hostname if host else None
    return origin_host == request_host or origin_host in set(allowed)


def mesh_proof(secret: str, node: str, boot: str) -> str:
    return _mac(secret, f"mesh:{node}:{boot}")


def mesh_hello_ok(
    secret: str | None, known: Iterable[str], node: str, boot: str, proof: str
) -> bool:
    if node not in set(known):
        return False
    return secret is None or hmac.compare_digest(mesh_proof(secret, node, boot), proof)
