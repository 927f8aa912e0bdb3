#!/usr/bin/env python3
"""A proxy in front of Azurite for the az:// tests: it forwards every request unchanged (Shared
Key signs the path, not the host, so Azurite still checks each signature), logs what it saw, and
answers Azure's transient errors (or any code) instead of forwarding when told to. With
--upstream-tls it speaks https to Azurite (which takes bearer tokens only over https).

Control (under /_/, never forwarded):
  GET  /_/log                    JSON list: method, path, query, range, if_match, status, busy
  POST /_/reset                  empties the log
  POST /_/busy?n=N&code=C&status=S   the next N requests answer S (503) with x-ms-error-code C
                                 (ServerBusy) and Azure's XML error body, without reaching Azurite
"""
import argparse
import http.client
import json
import os
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
log = []
busy = {"n": 0, "code": "ServerBusy", "status": 503}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def control(self, u):
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/_/log":
            with lock:
                body = json.dumps(log).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        if u.path == "/_/reset":
            with lock:
                log.clear()
            return self.reply(204)
        if u.path == "/_/busy":
            with lock:
                busy["n"] = int(q.get("n", ["1"])[0])
                busy["code"] = q.get("code", ["ServerBusy"])[0]
                busy["status"] = int(q.get("status", ["503"])[0])
            return self.reply(204)
        return self.reply(404)

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if u.path.startswith("/_/"):
            return self.control(u)
        entry = {"method": self.command, "path": u.path, "query": u.query,
                 "range": self.headers.get("Range") or self.headers.get("x-ms-range") or "",
                 "if_match": self.headers.get("If-Match") or "", "busy": False}
        with lock:
            if busy["n"] > 0:
                busy["n"] -= 1
                entry["busy"] = True
                entry["status"] = busy["status"]
                log.append(entry)
                code, status = busy["code"], busy["status"]
            else:
                code = None
        if code:
            xml = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>The server is busy '
                   '(injected by the test proxy).</Message></Error>' % code).encode()
            return self.reply(status, xml, [("x-ms-error-code", code), ("Content-Type", "application/xml")])
        if args.upstream_tls:
            # Azurite's throwaway certificate: this hop is on loopback and not what is tested.
            conn = http.client.HTTPSConnection("127.0.0.1", args.upstream, timeout=120,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", args.upstream, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        conn.request(self.command, self.path, body=body if (n or self.command in ("PUT", "POST")) else None,
                     headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        entry["status"] = resp.status
        with lock:
            log.append(entry)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length") or "0")
            self.end_headers()
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


ap = argparse.ArgumentParser()
ap.add_argument("--upstream", type=int, required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--upstream-tls", action="store_true", help="Azurite serves https")
args = ap.parse_args()
srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
srv.serve_forever()
