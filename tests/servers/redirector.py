#!/usr/bin/env python3
"""Answers every GET and HEAD with a 302 to TARGET + the request's path, and appends to LOG one
line per request: "auth" when it carried an Authorization header, else "none".
Usage: redirector.py PORT_FILE TARGET LOG"""
import http.server
import sys

port_file, target, log_path = sys.argv[1:4]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(log_path, 'a') as log:
            log.write(('auth' if self.headers.get('Authorization') else 'none') + '\n')
        self.send_response(302)
        self.send_header('Location', target + self.path)
        self.send_header('Content-Length', '0')
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(('127.0.0.1', 0), Handler)
with open(port_file, 'w') as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
