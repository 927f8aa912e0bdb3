#!/usr/bin/env python3
"""Loopback fake of Google's credential endpoints, for the tests (stdlib, plus Debian's
python3-google-auth to verify the JWT assertions).

- OAuth 2 token endpoint, POST /token (form body):
  * grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer: the assertion is verified with
    google.auth.jwt.decode against the public key registered for its issuer (signature, iat/exp
    with google-auth's clock skew), and must have iss = the registered client_email, aud = the URL
    it was posted to, a scope holding cloud-platform, alg RS256, the registered kid, and a
    lifetime (exp - iat) of at most one hour.
  * grant_type=refresh_token: client_id, client_secret and refresh_token as registered.
- STS, POST /v1/token: grant_type token-exchange, requested_token_type access_token, a known
  subject_token_type, the registered subject_token for the registered audience, scope
  cloud-platform; client credentials (HTTP Basic) when registered with the subject.
- IAM Credentials, POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken: a live bearer
  token issued here, a JSON body with a non-empty scope list, lifetime "Ns" up to 3600s, delegates
  of the form projects/-/serviceAccounts/X.
- The metadata server, GET /computeMetadata/v1/...: refuses requests without
  "Metadata-Flavor: Google" (403) or with X-Forwarded-For; answers with that header.
  .../instance/service-accounts/default/token, .../default/email, .../default/?recursive=true (the
  account named "default" or by its email),
  .../project/project-id.
- A subject token source for external_account files: GET /_/subject-token?format=text|json,
  which needs the header "X-Subject-Auth: letmein".
- GET /_/whoami: a protected resource; 200 with the token's kind and serial when the bearer token
  is live, 401 otherwise (the log keeps its x-goog-user-project).
- GET /tokeninfo?access_token=T: as Google's tokeninfo, for other fakes to check tokens.

Set-up routes (JSON bodies): POST /_/service-account {email, public_pem, key_id},
POST /_/user {client_id, client_secret, refresh_token}, POST /_/subject {subject_token,
audience, client_id?, client_secret?}, POST /_/config {expires_in}. GET /_/log lists the requests
(routes, grants, kinds, statuses; never a secret). Tokens issued are appended to --tokens (JSON
lines) when given.
"""
import argparse
import base64
import datetime
import http.server
import json
import os
import secrets
import threading
import time
import urllib.parse

import google.auth.jwt

CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform'
SUBJECT_TYPES = ('urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token',
                 'urn:ietf:params:oauth:token-type:saml2')

args = None
lock = threading.Lock()
log = []
state = {'serial': 0, 'expires_in': 3600, 'service_accounts': {}, 'users': [], 'subjects': [], 'tokens': {}}


def issue(kind, email):
    with lock:
        state['serial'] += 1
        n = state['serial']
        token = 'ya29.fake-%s' % secrets.token_urlsafe(32)
        exp = time.time() + state['expires_in']
        state['tokens'][token] = {'kind': kind, 'email': email, 'serial': n, 'expires': exp}
        expires_in = state['expires_in']
    if args.tokens:
        with lock, open(args.tokens, 'a') as f:
            f.write(json.dumps({'token': token, 'kind': kind, 'email': email, 'expires': exp}) + '\n')
    return token, expires_in, n


def live(token):
    with lock:
        t = state['tokens'].get(token)
    return t if t and t['expires'] > time.time() else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body, ctype='application/json', headers=()):
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.entry['status'] = status

    def oauth_error(self, status, error, why):
        self.entry['why'] = why
        self.reply(status, {'error': error, 'error_description': why})

    def api_error(self, status, why):
        self.entry['why'] = why
        self.reply(status, {'error': {'code': status, 'message': why, 'status': 'INVALID_ARGUMENT'}})

    def bearer(self):
        a = self.headers.get('Authorization', '')
        return a[7:] if a.startswith('Bearer ') else None

    def do_GET(self):
        self.handle_any('GET')

    def do_POST(self):
        self.handle_any('POST')

    def handle_any(self, method):
        u = urllib.parse.urlsplit(self.path)
        self.q = urllib.parse.parse_qs(u.query)
        n = int(self.headers.get('Content-Length') or 0)
        self.body = self.rfile.read(n) if n else b''
        self.entry = {'method': method, 'path': u.path, 'time': time.time()}
        try:
            self.route(method, u.path)
        finally:
            with lock:
                log.append(self.entry)

    def route(self, method, path):
        if path == '/_/log' and method == 'GET':
            with lock:
                body = json.dumps(log)
            return self.reply(200, body)
        if path.startswith('/_/') and method == 'POST':
            return self.configure(path[3:], json.loads(self.body or b'{}'))
        if path == '/token' and method == 'POST':
            return self.token()
        if path == '/v1/token' and method == 'POST':
            return self.sts()
        if path.startswith('/v1/projects/-/serviceAccounts/') and path.endswith(':generateAccessToken') \
                and method == 'POST':
            return self.generate(path[len('/v1/projects/-/serviceAccounts/'):-len(':generateAccessToken')])
        if path.startswith('/computeMetadata/') or path == '/':
            return self.metadata(path)
        if path == '/_/subject-token':
            return self.subject_token()
        if path == '/_/whoami':
            t = live(self.bearer() or '')
            if not t:
                self.entry['why'] = 'no live bearer token'
                return self.reply(401, {'error': {'code': 401, 'message': 'Request had invalid credentials.'}})
            self.entry.update(kind=t['kind'], serial=t['serial'], user_project=self.headers.get('x-goog-user-project'))
            return self.reply(200, {'kind': t['kind'], 'serial': t['serial'], 'email': t['email']})
        if path == '/tokeninfo':
            t = live((self.q.get('access_token') or [''])[0])
            if not t:
                return self.oauth_error(400, 'invalid_token', 'Invalid Value')
            return self.reply(200, {'email': t['email'], 'expires_in': int(t['expires'] - time.time()),
                                    'scope': CLOUD_PLATFORM, 'kind': t['kind']})
        self.reply(404, {'error': {'code': 404, 'message': 'no route %s %s' % (method, path)}})

    def configure(self, what, d):
        with lock:
            if what == 'service-account':
                state['service_accounts'][d['email']] = d
            elif what == 'user':
                state['users'].append(d)
            elif what == 'subject':
                state['subjects'].append(d)
            elif what == 'config':
                state['expires_in'] = int(d.get('expires_in', state['expires_in']))
            else:
                return self.reply(404, {'error': 'unknown set-up route'})
        self.reply(200, {})

    def form(self):
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def token(self):
        f = self.form()
        grant = f.get('grant_type')
        self.entry['grant'] = grant
        if self.headers.get('Content-Type', '').split(';')[0] != 'application/x-www-form-urlencoded':
            return self.oauth_error(400, 'invalid_request', 'the body must be application/x-www-form-urlencoded')
        if grant == 'urn:ietf:params:oauth:grant-type:jwt-bearer':
            return self.jwt_bearer(f.get('assertion', ''))
        if grant == 'refresh_token':
            with lock:
                users = list(state['users'])
            for u in users:
                if all(f.get(k) == u[k] for k in ('client_id', 'client_secret', 'refresh_token')):
                    token, exp, n = issue('user', u['client_id'])
                    self.entry.update(kind='user', serial=n)
                    return self.reply(200, {'access_token': token, 'expires_in': exp, 'token_type': 'Bearer',
                                            'scope': CLOUD_PLATFORM})
            return self.oauth_error(400, 'invalid_grant', 'Bad Request')
        self.oauth_error(400, 'unsupported_grant_type', 'Invalid grant_type')

    def jwt_bearer(self, assertion):
        try:
            header = json.loads(base64.urlsafe_b64decode(assertion.split('.')[0] + '=='))
            claims = json.loads(base64.urlsafe_b64decode(assertion.split('.')[1] + '=='))
        except (ValueError, IndexError):
            return self.oauth_error(400, 'invalid_grant', 'the assertion is not a JWT')
        with lock:
            sa = state['service_accounts'].get(claims.get('iss'))
        if not sa:
            return self.oauth_error(400, 'invalid_grant', 'unknown issuer')
        audience = 'http://%s%s' % (self.headers.get('Host'), '/token')
        try:
            google.auth.jwt.decode(assertion, certs=sa['public_pem'], audience=audience)
        except ValueError as e:
            return self.oauth_error(400, 'invalid_grant', 'the assertion does not verify: %s' % e)
        if header.get('alg') != 'RS256' or header.get('typ') != 'JWT':
            return self.oauth_error(400, 'invalid_grant', 'the header must be alg RS256, typ JWT')
        if sa.get('key_id') and header.get('kid') != sa['key_id']:
            return self.oauth_error(400, 'invalid_grant', 'kid is not the key\'s id')
        if CLOUD_PLATFORM not in claims.get('scope', '').split():
            return self.oauth_error(400, 'invalid_scope', 'the scope lacks cloud-platform')
        if not isinstance(claims.get('iat'), int) or not isinstance(claims.get('exp'), int) or \
                not 0 < claims['exp'] - claims['iat'] <= 3600:
            return self.oauth_error(400, 'invalid_grant', 'iat and exp must be integers at most an hour apart')
        token, exp, n = issue('service_account', claims['iss'])
        self.entry.update(kind='service_account', serial=n, lifetime=claims['exp'] - claims['iat'])
        self.reply(200, {'access_token': token, 'expires_in': exp, 'token_type': 'Bearer'})

    def sts(self):
        f = self.form()
        self.entry['grant'] = f.get('grant_type')
        if f.get('grant_type') != 'urn:ietf:params:oauth:grant-type:token-exchange':
            return self.oauth_error(400, 'unsupported_grant_type', 'grant_type must be token-exchange')
        if f.get('requested_token_type') != 'urn:ietf:params:oauth:token-type:access_token':
            return self.oauth_error(400, 'invalid_request', 'requested_token_type must be access_token')
        if f.get('subject_token_type') not in SUBJECT_TYPES:
            return self.oauth_error(400, 'invalid_request', 'unknown subject_token_type')
        if CLOUD_PLATFORM not in f.get('scope', '').split():
            return self.oauth_error(400, 'invalid_scope', 'the scope lacks cloud-platform')
        self.entry['options'] = f.get('options')
        with lock:
            subjects = list(state['subjects'])
        for s in subjects:
            if s['subject_token'] == f.get('subject_token') and s['audience'] == f.get('audience'):
                if s.get('client_id'):
                    basic = 'Basic ' + base64.b64encode(('%s:%s' % (s['client_id'], s['client_secret'])).encode()).decode()
                    if self.headers.get('Authorization') != basic:
                        return self.oauth_error(401, 'invalid_client', 'client authentication failed')
                token, exp, n = issue('sts', None)
                self.entry.update(kind='sts', serial=n)
                return self.reply(200, {'access_token': token, 'expires_in': exp, 'token_type': 'Bearer',
                                        'issued_token_type': 'urn:ietf:params:oauth:token-type:access_token'})
        self.oauth_error(400, 'invalid_grant', 'the subject token or audience is not valid')

    def generate(self, email):
        email = urllib.parse.unquote(email)
        src = live(self.bearer() or '')
        if not src:
            self.entry['why'] = 'no live bearer token'
            return self.reply(401, {'error': {'code': 401, 'message': 'Request had invalid credentials.'}})
        self.entry['source_kind'] = src['kind']
        try:
            d = json.loads(self.body)
        except ValueError:
            return self.api_error(400, 'the body is not JSON')
        if not isinstance(d.get('scope'), list) or not d['scope'] or CLOUD_PLATFORM not in d['scope']:
            return self.api_error(400, 'scope must be a list holding cloud-platform')
        life = d.get('lifetime', '3600s')
        if not (isinstance(life, str) and life.endswith('s') and life[:-1].isdigit() and 0 < int(life[:-1]) <= 3600):
            return self.api_error(400, 'lifetime must be "Ns" with N at most 3600')
        dl = d.get('delegates', [])
        if not all(isinstance(x, str) and x.startswith('projects/-/serviceAccounts/') for x in dl):
            return self.api_error(400, 'delegates must be projects/-/serviceAccounts/EMAIL')
        if set(d) - {'scope', 'lifetime', 'delegates'}:
            return self.api_error(400, 'unknown fields %s' % sorted(set(d) - {'scope', 'lifetime', 'delegates'}))
        token, _, n = issue('impersonated', email)
        with lock:
            exp = min(state['tokens'][token]['expires'], time.time() + int(life[:-1]))
            state['tokens'][token]['expires'] = exp
        self.entry.update(kind='impersonated', serial=n, email=email, delegates=len(dl))
        self.reply(200, {'accessToken': token, 'expireTime': datetime.datetime.utcfromtimestamp(exp).strftime(
            '%Y-%m-%dT%H:%M:%SZ')})

    def metadata(self, path):
        flavor = [('Metadata-Flavor', 'Google')]
        if self.headers.get('Metadata-Flavor') != 'Google' or self.headers.get('X-Forwarded-For'):
            self.entry['why'] = 'no Metadata-Flavor: Google'
            return self.reply(403, 'Missing required header "Metadata-Flavor": "Google"', 'text/html', flavor)
        if path == '/':
            return self.reply(200, 'computeMetadata/\n', 'application/text', flavor)
        base = '/computeMetadata/v1/instance/service-accounts/default/'
        # The account is named "default" or by its email, as on a VM.
        path = path.replace('/service-accounts/%s/' % args.email, '/service-accounts/default/')
        if path == base + 'token':
            token, exp, n = issue('metadata', args.email)
            self.entry.update(kind='metadata', serial=n)
            return self.reply(200, {'access_token': token, 'expires_in': exp, 'token_type': 'Bearer'},
                              'application/json', flavor)
        if path == base and self.q.get('recursive') == ['true']:
            return self.reply(200, {'aliases': ['default'], 'email': args.email, 'scopes': [CLOUD_PLATFORM]},
                              'application/json', flavor)
        if path == base + 'email':
            return self.reply(200, args.email, 'application/text', flavor)
        if path == '/computeMetadata/v1/project/project-id':
            return self.reply(200, args.project, 'application/text', flavor)
        self.reply(404, 'not found', 'text/html', flavor)

    def subject_token(self):
        if self.headers.get('X-Subject-Auth') != 'letmein':
            return self.reply(403, 'X-Subject-Auth is missing', 'text/plain')
        with lock:
            token = state['subjects'][-1]['subject_token'] if state['subjects'] else ''
        fmt = (self.q.get('format') or ['text'])[0]
        if fmt == 'json':
            return self.reply(200, {'id_token': token, 'other': 'x'})
        self.reply(200, token + '\n', 'text/plain')


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--port-file')
    p.add_argument('--tokens', help='append the tokens issued (JSON lines) here')
    p.add_argument('--project', default='fake-project')
    p.add_argument('--email', default='default@fake-project.iam.gserviceaccount.com')
    args = p.parse_args()
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', args.port), Handler)
    srv.daemon_threads = True
    if args.port_file:
        with open(args.port_file + '.tmp', 'w') as f:
            f.write(str(srv.server_address[1]))
        os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
