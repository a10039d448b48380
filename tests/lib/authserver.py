#!/usr/bin/python3
"""authserver.py: a small OAuth 2.0 authorization server over HTTPS on
127.0.0.1, for outbox's --authorize tests and for Dovecot's oauth2 passdb.

  authserver.py --port-file PF --log FILE --cert PEM --key PEM
                --client-id ID [--client-secret S] [--user U]
                [--slow-down N] [--deny] [--token-length N] [--max-seconds S]

Endpoints (POST form unless said):
  /device      device authorization (RFC 8628): device_code, user_code,
               verification_uri(_complete), interval 1
  /approve     GET ?user_code=C: the user approves on "another device"
  /authorize   GET, the authorization endpoint: checks client_id,
               response_type=code, code_challenge_method=S256, and redirects
               (302) to redirect_uri with code and state at once (the test
               plays the browser and the user)
  /token       grant_type refresh_token (rotates: a new refresh token each
               time, the old one stops working), authorization_code (checks
               the PKCE verifier against the challenge and the redirect_uri),
               device_code (authorization_pending until approved; slow_down
               the first N polls with --slow-down N), client_credentials
               (checks the secret)
  /revoke      token=T: that access or refresh token stops working
  /introspect  token=T (GET ?token= or POST), RFC 7662: {"active": true,
               "username": U, ...} or {"active": false}
Each request is logged to FILE as "METHOD PATH FORM" on one line.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import ssl
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--client-id", required=True)
ap.add_argument("--client-secret")
ap.add_argument("--user", default="alice")
ap.add_argument("--slow-down", type=int, default=0)
ap.add_argument("--deny", action="store_true")
ap.add_argument("--token-length", type=int, default=40)
ap.add_argument("--max-seconds", type=float, default=60)
args = ap.parse_args()

lock = threading.Lock()
access = {}       # token -> expiry
refresh = set()
codes = {}        # code -> (challenge, redirect_uri)
devices = {}      # device_code -> {"user_code", "approved", "polls"}


def new_token(prefix, n):
    return prefix + secrets.token_urlsafe(n)[:n]


def grant():
    at = new_token("AT.", args.token_length)
    rt = new_token("RT.", 24)
    access[at] = time.time() + 3600
    refresh.add(rt)
    return {"access_token": at, "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": rt}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, obj, headers=()):
        data = json.dumps(obj).encode()
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def error(self, err, code=400):
        self.reply(code, {"error": err})

    def form(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n).decode() if n else ""
        return {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}

    def log_req(self, form):
        with open(args.log, "a") as f:
            f.write(f"{self.command} {self.path.split('?')[0]} "
                    f"{urllib.parse.urlencode(form)}\n")

    def client_ok(self, form, need_secret=False):
        if form.get("client_id") != args.client_id:
            return False
        if args.client_secret and (need_secret or "client_secret" in form):
            return form.get("client_secret") == args.client_secret
        return not need_secret

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        self.log_req(q)
        with lock:
            if u.path == "/authorize":
                return self.authorize(q)
            if u.path == "/approve":
                for d in devices.values():
                    if d["user_code"] == q.get("user_code"):
                        d["approved"] = True
                        return self.reply(200, {"ok": True})
                return self.error("invalid_request")
            if u.path == "/introspect":
                return self.introspect(q)
        self.error("not_found", 404)

    def authorize(self, q):
        if (q.get("client_id") != args.client_id
                or q.get("response_type") != "code"
                or q.get("code_challenge_method") != "S256"
                or not q.get("code_challenge") or not q.get("state")):
            return self.error("invalid_request")
        redirect = q.get("redirect_uri", "")
        if not redirect.startswith("http://127.0.0.1:"):
            return self.error("invalid_request")
        sep = "&" if "?" in redirect else "?"
        if args.deny:
            loc = redirect + sep + urllib.parse.urlencode(
                {"error": "access_denied", "state": q["state"]})
        else:
            code = secrets.token_urlsafe(16)
            codes[code] = (q["code_challenge"], redirect)
            loc = redirect + sep + urllib.parse.urlencode(
                {"code": code, "state": q["state"]})
        self.send_response(302)
        self.send_header("Location", loc)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def introspect(self, form):
        t = form.get("token", "")
        if access.get(t, 0) > time.time():
            return self.reply(200, {"active": True, "username": args.user,
                                    "scope": "mail", "client_id":
                                    args.client_id})
        self.reply(200, {"active": False})

    def do_POST(self):
        form = self.form()
        self.log_req(form)
        path = urllib.parse.urlparse(self.path).path
        with lock:
            if path == "/device":
                return self.device(form)
            if path == "/token":
                return self.token(form)
            if path == "/revoke":
                access.pop(form.get("token"), None)
                refresh.discard(form.get("token"))
                return self.reply(200, {})
            if path == "/introspect":
                return self.introspect(form)
        self.error("not_found", 404)

    def device(self, form):
        if not self.client_ok(form):
            return self.error("invalid_client", 401)
        dc = secrets.token_urlsafe(16)
        uc = secrets.token_hex(3).upper()
        port = self.server.server_address[1]
        devices[dc] = {"user_code": uc, "approved": False, "polls": 0}
        self.reply(200, {"device_code": dc, "user_code": uc,
                         "verification_uri": f"https://localhost:{port}/approve",
                         "verification_uri_complete":
                         f"https://localhost:{port}/approve?user_code={uc}",
                         "expires_in": 60, "interval": 1})

    def token(self, form):
        g = form.get("grant_type")
        if g == "client_credentials":
            if not self.client_ok(form, need_secret=True):
                return self.error("invalid_client", 401)
            r = grant()
            refresh.discard(r.pop("refresh_token"))
            return self.reply(200, r)
        if not self.client_ok(form):
            return self.error("invalid_client", 401)
        if g == "refresh_token":
            rt = form.get("refresh_token")
            if rt not in refresh:
                return self.error("invalid_grant")
            refresh.discard(rt)
            return self.reply(200, grant())
        if g == "authorization_code":
            c = codes.pop(form.get("code", ""), None)
            if c is None or c[1] != form.get("redirect_uri"):
                return self.error("invalid_grant")
            v = form.get("code_verifier", "").encode()
            ch = base64.urlsafe_b64encode(
                hashlib.sha256(v).digest()).rstrip(b"=").decode()
            if ch != c[0] or not 43 <= len(v) <= 128:
                return self.error("invalid_grant")
            return self.reply(200, grant())
        if g == "urn:ietf:params:oauth:grant-type:device_code":
            d = devices.get(form.get("device_code", ""))
            if d is None:
                return self.error("invalid_grant")
            d["polls"] += 1
            if d["polls"] <= args.slow_down:
                return self.error("slow_down")
            if args.deny:
                return self.error("access_denied")
            if not d["approved"]:
                return self.error("authorization_pending")
            del devices[form["device_code"]]
            return self.reply(200, grant())
        self.error("unsupported_grant_type")

    def log_message(self, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(args.cert, args.key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
tmp = args.port_file + ".tmp"
with open(tmp, "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(tmp, args.port_file)
threading.Timer(args.max_seconds, srv.shutdown).start()
srv.serve_forever()
