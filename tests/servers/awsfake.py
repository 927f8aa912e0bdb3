#!/usr/bin/env python3
"""Loopback fakes of the AWS credential endpoints, for the integration tests (stdlib only).

- STS AssumeRoleWithWebIdentity: POST / (form body, or the same parameters in the query), as
  the STS API reference describes it: Action, Version=2011-06-15, RoleArn, RoleSessionName and
  WebIdentityToken are required; the token must be --web-token and the role --role-arn, else an
  <ErrorResponse> (InvalidIdentityToken, AccessDenied, ValidationError) as STS sends them.
- STS GetCallerIdentity: POST / with Action=GetCallerIdentity&Version=2011-06-15, which must be
  SigV4-signed (service sts) with a key of --keys; the signature is recomputed here (stdlib HMAC,
  as the SigV4 reference gives it) and a difference is a 403 SignatureDoesNotMatch, an unknown
  key a 403 InvalidClientTokenId. The answer is GetCallerIdentityResponse's documented shape with
  Arn arn:aws:iam::123456789012:user/<AccessKeyId>, UserId and Account 123456789012.
- The ECS/EKS container credentials endpoint: GET /ecs/creds; when --ecs-token is given, the
  Authorization header must carry exactly it (401 otherwise). JSON with AccessKeyId,
  SecretAccessKey, Token, Expiration, RoleArn.
- EC2 instance metadata, IMDSv2 only (as with HttpTokens=required): PUT /latest/api/token needs
  X-aws-ec2-metadata-token-ttl-seconds between 1 and 21600 (400 otherwise) and is refused with
  X-Forwarded-For (403); every GET needs a live X-aws-ec2-metadata-token (401 otherwise).
  GET /latest/meta-data/iam/security-credentials/ names the role;
  .../security-credentials/<role> gives Code, LastUpdated, Type, AccessKeyId, SecretAccessKey,
  Token, Expiration.

Each answer hands out fresh temporary credentials; they are appended to --keys (JSON lines, read
by s3proxy.py) with their real expiry (--real-lifetime), while the answer advertises
--lifetime: a real lifetime shorter than the advertised one makes credentials expire "early", as
when a clock or a revocation surprises the client. GET /_/log lists the requests seen.
"""
import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import threading
import time
import urllib.parse

args = None
lock = threading.Lock()
log = []
counter = [0]
imds_tokens = {}
instance = secrets.token_hex(2).upper()  # keys stay unique across fakes started one after another


def iso(t):
    return datetime.datetime.utcfromtimestamp(t).strftime('%Y-%m-%dT%H:%M:%SZ')


def issue(kind):
    with lock:
        counter[0] += 1
        n = counter[0]
    now = time.time()
    cred = {'akid': 'ASIA%s%s%08d' % (kind.upper()[:4].ljust(4, 'X'), instance, n), 'secret': secrets.token_urlsafe(30),
            'token': secrets.token_urlsafe(60), 'expires': now + args.real_lifetime}
    with lock, open(args.keys, 'a') as f:
        f.write(json.dumps(cred) + '\n')
    cred['expiration'] = iso(now + args.lifetime)
    return cred


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body, ctype):
        body = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.entry['status'] = status

    def sts_error(self, status, code, message):
        self.reply(status, '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender'
                   '</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>fake</RequestId></ErrorResponse>'
                   % (code, message), 'text/xml')

    def do_GET(self):
        self.handle_any()

    do_PUT = do_POST = do_GET

    def handle_any(self):
        path, _, query = self.path.partition('?')
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.entry = {'method': self.command, 'path': path}
        if path == '/_/log':
            return self.reply(200, json.dumps(log), 'application/json')
        with lock:
            log.append(self.entry)
        if path == '/' and self.command in ('POST', 'GET'):
            return self.sts(body.decode() if self.command == 'POST' else query, body)
        if path == '/ecs/creds' and self.command == 'GET':
            return self.ecs()
        if path.startswith('/latest/'):
            return self.imds(path)
        self.reply(404, 'not found', 'text/plain')

    def sigv4_check(self, body):
        """None when the request is signed right with a key of --keys, else the STS error to send."""
        auth = self.headers.get('Authorization') or ''
        if not auth.startswith('AWS4-HMAC-SHA256 '):
            return (403, 'MissingAuthenticationToken', 'Request is missing Authentication Token')
        f = dict(part.strip().split('=', 1) for part in auth[len('AWS4-HMAC-SHA256 '):].split(','))
        akid, scope = f['Credential'].split('/', 1)
        keys = {}
        with open(args.keys) as kf:
            for line in kf:
                if line.strip():
                    k = json.loads(line)
                    keys[k['akid']] = k
        if akid not in keys:
            return (403, 'InvalidClientTokenId', 'The security token included in the request is invalid.')
        date, region, service, _ = scope.split('/')
        signed = f['SignedHeaders'].split(';')
        canon = ''.join('%s:%s\n' % (h, ' '.join((self.headers.get(h) or '').split())) for h in signed)
        creq = '\n'.join([self.command, '/', '', canon, f['SignedHeaders'], hashlib.sha256(body).hexdigest()])
        sts = '\n'.join(['AWS4-HMAC-SHA256', self.headers.get('X-Amz-Date') or '', scope,
                          hashlib.sha256(creq.encode()).hexdigest()])
        key = ('AWS4' + keys[akid]['secret']).encode()
        for part in (date, region, service, 'aws4_request'):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        if service != 'sts' or not hmac.compare_digest(hmac.new(key, sts.encode(), hashlib.sha256).hexdigest(),
                                                        f['Signature']):
            return (403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the '
                    'signature you provided.')
        return None

    def caller_identity(self, body):
        bad = self.sigv4_check(body)
        if bad:
            return self.sts_error(*bad)
        akid = self.headers['Authorization'].split('Credential=', 1)[1].split('/', 1)[0]
        self.reply(200, '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                   '<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/%s</Arn><UserId>%s</UserId>'
                   '<Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata>'
                   '<RequestId>fake</RequestId></ResponseMetadata></GetCallerIdentityResponse>' % (akid, akid),
                   'text/xml')

    def sts(self, form, body=b''):
        p = dict(urllib.parse.parse_qsl(form, keep_blank_values=True))
        if p.get('Action') == 'GetCallerIdentity' and p.get('Version') == '2011-06-15':
            self.entry.update({'action': 'GetCallerIdentity', 'signed': 'Authorization' in self.headers})
            return self.caller_identity(body)
        self.entry.update({'action': p.get('Action'), 'role': p.get('RoleArn'), 'session': p.get('RoleSessionName'),
                           'signed': 'Authorization' in self.headers})
        if p.get('Action') != 'AssumeRoleWithWebIdentity' or p.get('Version') != '2011-06-15':
            return self.sts_error(400, 'InvalidAction', 'Could not find operation %s for version %s'
                                  % (p.get('Action'), p.get('Version')))
        for name in ('RoleArn', 'RoleSessionName', 'WebIdentityToken'):
            if not p.get(name):
                return self.sts_error(400, 'ValidationError', '%s is required' % name)
        if p['WebIdentityToken'] != args.web_token:
            return self.sts_error(400, 'InvalidIdentityToken', 'Couldn\'t retrieve verification key from your '
                                  'identity provider')
        if p['RoleArn'] != args.role_arn:
            return self.sts_error(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity')
        c = issue('webi')
        self.reply(200, '<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                   '<AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>system:serviceaccount:ns:sa'
                   '</SubjectFromWebIdentityToken><Audience>sts.amazonaws.com</Audience><AssumedRoleUser><Arn>'
                   '%s/%s</Arn><AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser><Credentials>'
                   '<SessionToken>%s</SessionToken><SecretAccessKey>%s</SecretAccessKey><Expiration>%s</Expiration>'
                   '<AccessKeyId>%s</AccessKeyId></Credentials><Provider>fake</Provider>'
                   '</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>fake</RequestId>'
                   '</ResponseMetadata></AssumeRoleWithWebIdentityResponse>'
                   % (p['RoleArn'], p['RoleSessionName'], p['RoleSessionName'], c['token'], c['secret'],
                      c['expiration'], c['akid']), 'text/xml')

    def ecs(self):
        got = self.headers.get('Authorization')
        self.entry['authorization'] = 'match' if got == args.ecs_token else ('other' if got else None)
        if args.ecs_token and got != args.ecs_token:
            return self.reply(401, '{"message": "unauthorized"}', 'application/json')
        c = issue('ecs')
        self.reply(200, json.dumps({'AccessKeyId': c['akid'], 'SecretAccessKey': c['secret'], 'Token': c['token'],
                                    'Expiration': c['expiration'], 'RoleArn': 'arn:aws:iam::123456789012:role/fake'}),
                   'application/json')

    def imds(self, path):
        if self.headers.get('X-Forwarded-For'):
            return self.reply(403, 'Forbidden', 'text/plain')
        if path == '/latest/api/token':
            if self.command != 'PUT':
                return self.reply(405, 'Method Not Allowed', 'text/plain')
            ttl = self.headers.get('X-aws-ec2-metadata-token-ttl-seconds', '')
            self.entry['ttl'] = ttl
            if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.reply(400, 'Bad Request', 'text/plain')
            token = secrets.token_urlsafe(40)
            with lock:
                imds_tokens[token] = time.time() + int(ttl)
            return self.reply(200, token, 'text/plain')
        token = self.headers.get('X-aws-ec2-metadata-token')
        self.entry['token'] = token is not None
        with lock:
            live = token in imds_tokens and imds_tokens[token] > time.time()
        if not live:
            return self.reply(401, 'Unauthorized', 'text/plain')
        base = '/latest/meta-data/iam/security-credentials/'
        if path == base and args.imds_role:
            return self.reply(200, args.imds_role, 'text/plain')
        if args.imds_role and path == base + args.imds_role:
            c = issue('imds')
            return self.reply(200, json.dumps({'Code': 'Success', 'LastUpdated': iso(time.time()), 'Type': 'AWS-HMAC',
                                               'AccessKeyId': c['akid'], 'SecretAccessKey': c['secret'],
                                               'Token': c['token'], 'Expiration': c['expiration']}, indent=2),
                              'text/plain')
        self.reply(404, 'Not Found', 'text/plain')


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument('--port-file', required=True)
    p.add_argument('--keys', required=True)
    p.add_argument('--lifetime', type=float, default=3600)
    p.add_argument('--real-lifetime', type=float)
    p.add_argument('--web-token', default='')
    p.add_argument('--role-arn', default='')
    p.add_argument('--ecs-token', default='')
    p.add_argument('--imds-role', default='')
    args = p.parse_args()
    if args.real_lifetime is None:
        args.real_lifetime = args.lifetime
    srv = Server(('127.0.0.1', 0), Handler)
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
