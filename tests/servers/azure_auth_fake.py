#!/usr/bin/env python3
"""A Microsoft Entra token service fake for the tests: the v2 token endpoint, IMDS and App
Service's managed identity endpoint, checking what a client sends as Entra checks it.

POST /<tenant>/oauth2/v2.0/token (grant_type=client_credentials, scope=<resource>/.default):
- client_secret: compared with the registered client's secret.
- client_assertion (type urn:ietf:params:oauth:client-assertion-type:jwt-bearer) whose header has
  x5t#S256 or x5t: a certificate assertion. The thumbprint must be the SHA-256 (or SHA-1) of a
  certificate registered for the client; the signature is verified with its key (PS256 or RS256,
  nothing else); aud must be this endpoint's URL as the client reached it; iss = sub = client id;
  jti must never have been seen before; nbf/exp must hold now (60 s of skew) and span at most
  an hour.
- any other client_assertion: a federated (workload identity) token. Its signature is verified
  with the test identity provider's public key (--federated), aud must be
  api://AzureADTokenExchange, iss and sub those registered for the client.
Refusals answer as Entra does: HTTP 400/401 with {"error", "error_description": "AADSTS..."}.
Issued tokens are JWTs (RS256, this fake's own key) with aud = the resource, iss =
https://sts.windows.net/<tenant>/, tid, appid, iat, nbf, exp (what Azurite's --oauth basic checks).

GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=R[&client_id=C] (IMDS):
requires "Metadata: true"; without client_id the system-assigned identity (--msi-system),
with one a user-assigned identity (--msi-user). GET /msi/token?api-version=2019-08-01&resource=R
[&client_id=C] (App Service): requires X-IDENTITY-HEADER = --app-service-header.

GET /<tenant>/v2.0/.well-known/openid-configuration: the discovery document msal-node reads.

Control (under /_/): GET /_/log (JSON list: route, client_id, how, resource, status, error; never
a secret, assertion or token), GET /_/whoami (Authorization: Bearer <token issued here>: the
token's claims after checking its signature and expiry), POST /_/fail?n=N&status=S (the next N
token requests answer S), POST /_/lifetime?s=N (tokens issued from now on live N seconds).

Run with --port-file (the HTTP port is written there once listening) and, for msal-node, which
takes https only, --tls-cert/--tls-key/--tls-port-file: the same routes over TLS too.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SKEW = 60

lock = threading.Lock()
log = []
seen_jti = set()
fail = {"n": 0, "status": 503}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--tls-port-file")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tenant", required=True)
    p.add_argument("--secret", action="append", default=[], help="CLIENT_ID=SECRET")
    p.add_argument("--cert", action="append", default=[], help="CLIENT_ID=CERT.pem (the public certificate)")
    p.add_argument("--federated", action="append", default=[],
                   help="CLIENT_ID=ISSUER|SUBJECT|IDP_PUBLIC_KEY.pem")
    p.add_argument("--msi-system", help="the client id of the system-assigned identity")
    p.add_argument("--msi-user", action="append", default=[], help="client ids of user-assigned identities")
    p.add_argument("--app-service-header", help="the IDENTITY_HEADER value App Service's endpoint wants")
    p.add_argument("--lifetime", type=int, default=3600, help="seconds an issued token lives")
    return p.parse_args()


args = parse_args()
signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
signing_pub = signing_key.public_key()
secrets_by_client = dict(s.split("=", 1) for s in args.secret)
certs_by_client = {}
for spec in args.cert:
    cid, path = spec.split("=", 1)
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(serialization.Encoding.DER)
    certs_by_client.setdefault(cid, []).append({
        "s256": b64url(hashlib.sha256(der).digest()),
        "s1": b64url(hashlib.sha1(der).digest()),
        "key": cert.public_key(),
    })
federated_by_client = {}
for spec in args.federated:
    cid, rest = spec.split("=", 1)
    issuer, subject, path = rest.split("|", 2)
    with open(path, "rb") as f:
        federated_by_client[cid] = {"iss": issuer, "sub": subject,
                                    "key": serialization.load_pem_public_key(f.read())}


class Refused(Exception):
    def __init__(self, status, error, desc):
        super().__init__(desc)
        self.status, self.error, self.desc = status, error, desc


def issue(client_id, resource):
    now = int(time.time())
    claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % args.tenant, "tid": args.tenant,
              "appid": client_id, "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)), "sub": client_id,
              "iat": now, "nbf": now, "exp": now + args.lifetime, "ver": "1.0", "idtyp": "app"}
    return jwt.encode(claims, signing_key, algorithm="RS256", headers={"kid": "fake"}), now + args.lifetime


def check_lifetime(claims, what):
    now = time.time()
    for k in ("exp", "nbf"):
        if not isinstance(claims.get(k), (int, float)):
            raise Refused(400, "invalid_client", "AADSTS700023: %s lacks %s" % (what, k))
    if claims["nbf"] > now + SKEW:
        raise Refused(400, "invalid_client", "AADSTS700024: %s is not valid yet (nbf)" % what)
    if claims["exp"] < now - SKEW:
        raise Refused(400, "invalid_client", "AADSTS700024: %s has expired" % what)
    if claims["exp"] - claims["nbf"] > 3600:
        raise Refused(400, "invalid_client", "AADSTS700025: %s lives longer than an hour" % what)


def certificate_assertion(client_id, assertion, header, audience):
    alg = header.get("alg")
    if alg not in ("PS256", "RS256"):
        raise Refused(401, "invalid_client", "AADSTS5002738: assertion alg %r is not PS256 or RS256" % alg)
    registered = certs_by_client.get(client_id, [])
    if "x5t#S256" in header:
        match = [c for c in registered if hmac.compare_digest(c["s256"], str(header["x5t#S256"]))]
        kind = "x5t#S256"
    else:
        match = [c for c in registered if hmac.compare_digest(c["s1"], str(header.get("x5t")))]
        kind = "x5t"
    if not match:
        raise Refused(401, "invalid_client", "AADSTS700027: the assertion's %s matches no certificate registered "
                      "for %s" % (kind, client_id))
    try:
        claims = jwt.decode(assertion, match[0]["key"], algorithms=[alg], audience=audience,
                            options={"require": ["aud", "iss", "sub", "jti", "exp", "nbf"], "verify_exp": False,
                                     "verify_nbf": False})
    except jwt.InvalidAudienceError:
        raise Refused(401, "invalid_client", "AADSTS700212: the assertion's audience is not %s" % audience)
    except jwt.PyJWTError as ex:
        raise Refused(401, "invalid_client", "AADSTS700027: the assertion failed verification: %s" % ex)
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise Refused(401, "invalid_client", "AADSTS700021: the assertion's iss and sub must be the client id")
    check_lifetime(claims, "the client assertion")
    with lock:
        if claims["jti"] in seen_jti:
            raise Refused(401, "invalid_client", "AADSTS700025: the assertion's jti was used before")
        seen_jti.add(claims["jti"])
    return "certificate:" + alg + ":" + kind


def federated_assertion(client_id, assertion):
    fed = federated_by_client.get(client_id)
    if not fed:
        raise Refused(400, "invalid_request", "AADSTS70021: no federated credential is registered for %s" % client_id)
    try:
        claims = jwt.decode(assertion, fed["key"], algorithms=["RS256", "ES256", "PS256"],
                            audience="api://AzureADTokenExchange",
                            options={"require": ["aud", "iss", "sub", "exp"], "verify_exp": False,
                                     "verify_nbf": False})
    except jwt.InvalidAudienceError:
        raise Refused(400, "invalid_request", "AADSTS700212: the federated token's audience is not "
                      "api://AzureADTokenExchange")
    except jwt.PyJWTError as ex:
        raise Refused(400, "invalid_request", "AADSTS700024: the federated token failed verification: %s" % ex)
    if claims["iss"] != fed["iss"] or claims["sub"] != fed["sub"]:
        raise Refused(400, "invalid_request", "AADSTS70021: no federated credential of %s matches issuer %s and "
                      "subject %s" % (client_id, claims["iss"], claims["sub"]))
    claims.setdefault("nbf", claims.get("iat", 0))
    now = time.time()
    if claims["exp"] < now - SKEW:
        raise Refused(400, "invalid_request", "AADSTS700024: the federated token has expired")
    return "federated"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    scheme = "http"

    def log_message(self, fmt, *a):
        sys.stderr.write("azure_auth_fake: " + (fmt % a) + "\n")

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def record(self, **entry):
        with lock:
            log.append(entry)

    def base_url(self):
        return "%s://%s" % (self.scheme, self.headers.get("Host", ""))

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path == "/_/log":
            with lock:
                return self.send_json(200, list(log))
        if u.path == "/_/whoami":
            return self.whoami()
        if u.path == "/metadata/identity/oauth2/token":
            return self.managed("imds", q, self.headers.get("Metadata") == "true", "2018-02-01",
                                "Required metadata header not specified")
        if u.path == "/msi/token":
            ok = args.app_service_header is not None and hmac.compare_digest(
                self.headers.get("X-IDENTITY-HEADER", ""), args.app_service_header)
            return self.managed("appservice", q, ok, "2019-08-01", "X-IDENTITY-HEADER is missing or wrong")
        parts = u.path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == args.tenant and parts[1:] == ["v2.0", ".well-known",
                                                                           "openid-configuration"]:
            base = "%s/%s" % (self.base_url(), args.tenant)
            return self.send_json(200, {
                "token_endpoint": base + "/oauth2/v2.0/token",
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "end_session_endpoint": base + "/oauth2/v2.0/logout",
                "issuer": base + "/v2.0",
                "jwks_uri": base + "/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
            })
        self.send_json(404, {"error": "not_found", "error_description": "no route %s" % u.path})

    def whoami(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return self.send_json(401, {"error": "no bearer token"})
        try:
            claims = jwt.decode(auth[7:], signing_pub, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.PyJWTError as ex:
            return self.send_json(401, {"error": "token refused: %s" % ex})
        self.send_json(200, {k: claims[k] for k in ("aud", "appid", "iss", "tid")})

    def managed(self, route, q, header_ok, api_version, header_msg):
        cid = q.get("client_id")
        entry = {"route": route, "client_id": cid, "resource": q.get("resource"), "how": route}
        if not header_ok:
            entry.update(status=400, error="header")
            self.record(**entry)
            return self.send_json(400, {"error": "invalid_request", "error_description": header_msg})
        if q.get("api-version") != api_version or not q.get("resource"):
            entry.update(status=400, error="query")
            self.record(**entry)
            return self.send_json(400, {"error": "invalid_request",
                                        "error_description": "api-version %s and resource are required" % api_version})
        if cid is None and args.msi_system:
            cid = args.msi_system
        elif cid is None or cid not in args.msi_user:
            entry.update(status=400, error="identity")
            self.record(**entry)
            return self.send_json(400, {"error": "invalid_request", "error_description": "Identity not found"})
        token, exp = issue(cid, q["resource"])
        entry.update(status=200, client_id=cid)
        self.record(**entry)
        now = int(time.time())
        body = {"access_token": token, "client_id": cid, "expires_on": str(exp), "resource": q["resource"],
                "token_type": "Bearer"}
        if route == "imds":
            body.update(expires_in=str(exp - now), ext_expires_in=str(exp - now), not_before=str(now))
        self.send_json(200, body)

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length) if length else b""
        if u.path == "/_/fail":
            q = dict(urllib.parse.parse_qsl(u.query))
            with lock:
                fail.update(n=int(q.get("n", "1")), status=int(q.get("status", "503")))
            return self.send_json(200, {})
        if u.path == "/_/lifetime":
            args.lifetime = int(dict(urllib.parse.parse_qsl(u.query))["s"])
            return self.send_json(200, {})
        parts = u.path.strip("/").split("/")
        if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            return self.send_json(404, {"error": "not_found", "error_description": "no route %s" % u.path})
        form = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True))
        cid = form.get("client_id")
        entry = {"route": "token", "client_id": cid, "resource": None, "how": None, "scheme": self.scheme}
        with lock:
            failing = fail["n"] > 0
            if failing:
                fail["n"] -= 1
        try:
            if failing:
                raise Refused(fail["status"], "temporarily_unavailable", "AADSTS90033: scripted failure")
            if parts[0] != args.tenant:
                raise Refused(400, "invalid_tenant", "AADSTS90002: Tenant '%s' not found" % parts[0])
            if form.get("grant_type") != "client_credentials":
                raise Refused(400, "unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials")
            scope = form.get("scope", "")
            if not scope.endswith("/.default") or " " in scope:
                raise Refused(400, "invalid_scope", "AADSTS1002012: scope must be one <resource>/.default")
            resource = scope[:-len("/.default")]
            entry["resource"] = resource
            if not cid or (cid not in secrets_by_client and cid not in certs_by_client
                           and cid not in federated_by_client):
                raise Refused(400, "unauthorized_client", "AADSTS700016: Application with identifier '%s' was not "
                              "found in the directory" % cid)
            if "client_secret" in form:
                want = secrets_by_client.get(cid)
                if want is None or not hmac.compare_digest(form["client_secret"], want):
                    raise Refused(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
                entry["how"] = "secret"
            elif "client_assertion" in form:
                if form.get("client_assertion_type") != JWT_BEARER:
                    raise Refused(400, "invalid_request", "AADSTS50027: client_assertion_type must be " + JWT_BEARER)
                assertion = form["client_assertion"]
                try:
                    header = jwt.get_unverified_header(assertion)
                except jwt.PyJWTError:
                    raise Refused(400, "invalid_request", "AADSTS50027: the client assertion is not a JWT")
                if "x5t#S256" in header or "x5t" in header:
                    audience = "%s/%s/oauth2/v2.0/token" % (self.base_url(), parts[0])
                    entry["how"] = certificate_assertion(cid, assertion, header, audience)
                else:
                    entry["how"] = federated_assertion(cid, assertion)
            else:
                raise Refused(401, "invalid_client", "AADSTS7000218: the request body must contain client_assertion "
                              "or client_secret")
        except Refused as r:
            entry.update(status=r.status, error=r.error, description=r.desc)
            self.record(**entry)
            return self.send_json(r.status, {"error": r.error, "error_description": r.desc + "\r\nTrace ID: fake",
                                             "error_codes": [0], "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ")})
        token, exp = issue(cid, resource)
        entry.update(status=200)
        self.record(**entry)
        life = exp - int(time.time())
        self.send_json(200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                             "access_token": token})


class TlsHandler(Handler):
    scheme = "https"


def serve(server):
    server.serve_forever()


def main():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    servers = [httpd]
    if args.tls_cert:
        tls = ThreadingHTTPServer(("127.0.0.1", 0), TlsHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
        servers.append(tls)
        threading.Thread(target=serve, args=(tls,), daemon=True).start()
        with open(args.tls_port_file + ".tmp", "w") as f:
            f.write(str(tls.server_address[1]))
        os.rename(args.tls_port_file + ".tmp", args.tls_port_file)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
