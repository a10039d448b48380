#!/usr/bin/python3
"""tokenserver.py: an OAuth 2.0 token endpoint over HTTPS on 127.0.0.1, for
outbox's refresh tests.  Grants --tokens one after another for the right
refresh token and client id; answers 400 invalid_grant otherwise.  Writes
the port to --port-file and each request's form to --log, one per line."""
import argparse
import http.server
import json
import os
import ssl
import threading
import time
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--refresh", required=True)
ap.add_argument("--client-id", required=True)
ap.add_argument("--tokens", required=True)
ap.add_argument("--expires-in", type=int, default=3600)
ap.add_argument("--max-seconds", type=float, default=30)
ap.add_argument("--rotate", default="",
                help="comma-separated new refresh tokens, one per grant; "
                "each becomes the valid one")
ap.add_argument("--error", help="always answer 400 with this JSON text")
ap.add_argument("--delay", type=float, default=0,
                help="seconds to wait before answering")
ap.add_argument("--huge", type=int, default=0,
                help="answer 200 with a JSON body of this many bytes")
ap.add_argument("--redirect", help="answer 302 to this URL")
args = ap.parse_args()
tokens = args.tokens.split(",")
rotate = [t for t in args.rotate.split(",") if t]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        form = urllib.parse.parse_qs(body.decode())
        with open(args.log, "a") as f:
            f.write(body.decode() + "\n")
        time.sleep(args.delay)
        with lock:
            self.answer(form)

    def answer(self, form):
        if args.redirect is not None:
            self.send_response(302)
            self.send_header("Location", args.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if args.huge:
            pad = "x" * args.huge
            data = json.dumps({"access_token": "AT-huge", "pad": pad,
                               "token_type": "Bearer"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        ok = (form.get("grant_type") == ["refresh_token"]
              and form.get("refresh_token") == [args.refresh]
              and form.get("client_id") == [args.client_id] and tokens)
        if args.error is not None:
            data = args.error.encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if ok:
            code, reply = 200, {"access_token": tokens.pop(0),
                                "token_type": "Bearer",
                                "expires_in": args.expires_in}
            if rotate:
                args.refresh = reply["refresh_token"] = rotate.pop(0)
        else:
            code, reply = 400, {"error": "invalid_grant",
                                "error_description": "Bad refresh token"}
        data = json.dumps(reply).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

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
