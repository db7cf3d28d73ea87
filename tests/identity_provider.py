"""A real local identity provider over HTTPS (http.server on 127.0.0.1, a trustme certificate),
standing in for Microsoft's and Google's OAuth2 endpoints: the one part of OAuth2 that cannot be real here.

It answers the requests announcer (and MSAL) make: Microsoft's OpenID configuration, device code and
token endpoints under /TENANT/, and Google's /device/code and /token. Device codes are approved at once;
refresh tokens can be made to expire; every access token it issues is new, and told to the SMTP server.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import trustme

from smtp_server import USERNAME


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class IdentityProvider:
    """Issues access and refresh tokens; `on_token` hears of each new access token."""

    def __init__(self, ca: trustme.CA, on_token: Callable[[str], None] = lambda token: None,
                 expires_in: int = 3600) -> None:
        self.on_token = on_token
        self.expires_in = expires_in
        self.refresh_tokens: set[str] = set()
        self.issued: list[str] = []           # every access token, in order
        self.requests: list[tuple[str, dict]] = []  # (path, form fields)
        self.refresh_expired = False          # answer refreshes as an expired sign-in
        self._count = 0
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                provider._answer(self, self.path, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                fields = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                provider._answer(self, self.path, fields)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> IdentityProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _tokens(self, tenant: str) -> dict:
        with self._lock:
            self._count += 1
            access, refresh = f"access-{self._count}-Zq8", f"refresh-{self._count}-Xw3"
            self.issued.append(access)
            self.refresh_tokens.add(refresh)
        self.on_token(access)
        now = int(time.time())
        claims = {"iss": f"{self.url}/{tenant}/v2.0", "aud": "client-id-123", "sub": "s1", "oid": "o1",
                  "tid": "t1", "iat": now, "exp": now + 3600, "preferred_username": USERNAME}
        return {"token_type": "Bearer", "access_token": access, "refresh_token": refresh,
                "expires_in": self.expires_in, "scope": "https://outlook.office.com/SMTP.Send",
                "id_token": f"{_b64url({'alg': 'none'})}.{_b64url(claims)}.",
                "client_info": _b64url({"uid": "u1", "utid": "t1"})}

    def _answer(self, handler: BaseHTTPRequestHandler, path: str, fields: dict) -> None:
        path = urllib.parse.urlsplit(path).path
        self.requests.append((path, fields))
        status, body = 200, {}
        parts = path.strip("/").split("/")
        tenant = parts[0]
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            base = f"{self.url}/{tenant}/oauth2/v2.0"
            body = {"issuer": f"{self.url}/{tenant}/v2.0", "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token", "device_authorization_endpoint": f"{base}/devicecode"}
        elif path.endswith("/devicecode") or path == "/device/code":
            body = {"device_code": "device-code-1", "user_code": "WDJB-MJHT", "expires_in": 900, "interval": 0,
                    "verification_uri": "https://microsoft.com/devicelogin",
                    "verification_url": "https://www.google.com/device",
                    "message": "To sign in, open https://microsoft.com/devicelogin and enter the code WDJB-MJHT"}
        elif path.endswith("/token"):
            grant = fields.get("grant_type", "")
            if grant.endswith("device_code"):
                body = self._tokens(tenant)
            elif grant == "refresh_token" and fields.get("refresh_token") in self.refresh_tokens \
                    and not self.refresh_expired:
                body = self._tokens(tenant)
            else:
                status = 400
                body = {"error": "invalid_grant",
                        "error_description": "AADSTS700082: The refresh token has expired due to inactivity. "
                                             "Trace ID: 0000"}
        else:
            status = 404
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
