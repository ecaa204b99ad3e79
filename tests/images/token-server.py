#!/usr/bin/env python3
"""Bearer token issuer for the image tests (distribution's token auth spec).

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with optional HTTP
Basic credentials. Good credentials get every action asked for, no credentials get
"pull" only, bad credentials get 401. Tokens are RS256 JWTs signed by the openssl
CLI and carry their certificate in the "x5c" header, which the registry trusts
through auth.token.rootcertbundle. Binds to 127.0.0.1 only.
"""
import argparse
import base64
import json
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--issuer", default="liana-test-issuer")
    args = p.parse_args()
    der = subprocess.run(["openssl", "x509", "-in", args.cert, "-outform", "DER"],
                         check=True, capture_output=True).stdout
    chain = [base64.b64encode(der).decode()]

    def jwt(claims):
        head = b64u(json.dumps({"typ": "JWT", "alg": "RS256", "x5c": chain}).encode())
        body = b64u(json.dumps(claims).encode())
        msg = (head + "." + body).encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", args.key],
                             input=msg, check=True, capture_output=True).stdout
        return msg.decode() + "." + b64u(sig)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            sys.stderr.write("token: " + fmt % a + "\n")

        def reply(self, code, obj, headers=()):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/token":
                return self.reply(404, {"error": "not found"})
            query = parse_qs(url.query)
            user = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                try:
                    name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                except ValueError:
                    name, pw = "", ""
                if (name, pw) != (args.user, args.password):
                    return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                                      [("WWW-Authenticate", 'Basic realm="token"')])
                user = name
            access = []
            for s in query.get("scope", []):
                for one in s.split():
                    parts = one.split(":")
                    if len(parts) < 3:
                        continue
                    actions = parts[-1].split(",")
                    if user is None:
                        actions = [a for a in actions if a == "pull"]
                    access.append({"type": parts[0], "name": ":".join(parts[1:-1]), "actions": actions})
            now = int(time.time())
            token = jwt({"iss": args.issuer, "sub": user or "", "aud": query.get("service", [""])[0],
                         "exp": now + 600, "nbf": now - 30, "iat": now, "jti": uuid.uuid4().hex,
                         "access": access})
            self.reply(200, {"token": token, "expires_in": 600})

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
