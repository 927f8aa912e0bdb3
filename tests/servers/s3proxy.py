#!/usr/bin/env python3
"""A verifying, fault-injecting S3 front for s3rver, for the integration tests.

Every request is checked the way S3 checks it before it reaches s3rver (which checks no SigV4
signature itself): the signature is recomputed with botocore's official signer (S3SigV4Auth for
the Authorization header, S3SigV4QueryAuth for presigned URLs) from the key decoded off the wire
and re-encoded by botocore's own rules, and any difference is a 403 SignatureDoesNotMatch. Also
checked, as S3 does: x-amz-content-sha256 against the body, x-amz-checksum-sha256, every x-amz-*
header being signed, the credential scope, the session token, expired credentials (ExpiredToken),
a clock more than 15 minutes off (RequestTimeTooSkewed, answered with this server's Date), and a
presigned URL's expiry.

s3rver lacks parts of the multipart API; this front adds them over s3rver's own files:
AbortMultipartUpload, ListMultipartUploads (GET /bucket?uploads), and at CompleteMultipartUpload
the checks S3 makes (InvalidPart for an unknown part or a wrong ETag, InvalidPartOrder,
EntityTooSmall for a part but the last under 5 MiB).

Control endpoints (unsigned, under /_/): GET /_/log (requests seen, JSON), POST /_/reset,
POST /_/faults (a JSON list of rules, see Fault below), POST /_/clock?offset=SECONDS,
GET /_/uploads (open multipart uploads, JSON), POST /_/page?size=N (ListObjectsV2 answers at most N
keys a page, so that continuation tokens are exercised without thousands of objects).

Two of s3rver's answers are put right on the way back, as S3 gives them: ListObjectsV2 pages
(s3rver's continuation tokens need DES, which Node 20's OpenSSL no longer has, and with a
delimiter it misses prefixes that hold objects only two or more levels down; so this front asks
s3rver for the flat listing and groups and pages it itself, with opaque tokens), and a Range request on an empty object (S3 says
416 InvalidRange; s3rver promises a byte it never sends).

Keys: --keys names a file of JSON lines {"akid", "secret", "token", "expires"} (expires: epoch
seconds or null); it is re-read when an unknown key shows up, so the credential fakes
(awsfake.py) can add the keys they hand out.
"""
import argparse
import base64
import calendar
import email.utils
import hashlib
import http.client
import http.server
import json
import os
import shutil
import socket
import struct
import sys
import threading
import time
import urllib.parse

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

MIN_PART = 5 * 1024 * 1024

args = None
lock = threading.Lock()
log = []
faults = []
clock_offset = 0.0
page_size = 0
keys = {}


def now():
    return time.time() + clock_offset


def load_keys():
    if not args.keys or not os.path.exists(args.keys):
        return
    with open(args.keys) as f:
        for line in f:
            line = line.strip()
            if line:
                k = json.loads(line)
                keys[k['akid']] = k


def xml_error(code, message, extra=''):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>%s'
            '<RequestId>proxy</RequestId></Error>' % (code, message, extra)).encode()


def esc(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


class Fault:
    """A rule: {"method": "PUT", "path": "substring", "query": "substring", "header_range":
    "prefix of the Range header", "action": ..., "count": N}. Actions: status (with "status", "code"; a 5xx or 4xx answered instead of
    forwarding), reset_upload (read "after" bytes of the body, then reset the connection),
    reset_request (read the whole body, then reset the connection before answering), reset (forward, send
    "after" body bytes, then reset the connection), stall (forward, send "after" bytes, then
    nothing for "seconds"), delay (wait "seconds", then forward: a slow server), bad_range (forward, shift Content-Range's start by one),
    total (forward, with Content-Range's total size replaced by "total": a server lying about the
    object's size), complete_error (answer 200 with an <Error> body of "code" without forwarding)."""

    def __init__(self, d):
        self.d = d
        self.left = d.get('count', 1)

    def matches(self, method, path, query, rng):
        d = self.d
        return (self.left > 0 and d.get('method', method) == method and d.get('path', '') in path
                and d.get('query', '') in query and (rng or '').startswith(d.get('header_range', '')))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(now(), usegmt=True)

    # -- plumbing ------------------------------------------------------------------------------
    def reply(self, status, body=b'', headers=None, ctype='application/xml'):
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header('Content-Type', ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)
        self.entry['status'] = status

    def error(self, status, code, message, extra=''):
        self.entry['error'] = code
        self.reply(status, xml_error(code, esc(message), extra))

    def reset_connection(self):
        # SO_LINGER 0: close sends a TCP RST, as a dropped connection looks to the client.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            self.wfile.flush()
        except OSError:
            pass
        self.connection.close()
        self.close_connection = True

    def do_GET(self):
        self.handle_any()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def handle_any(self):
        raw_path, _, raw_query = self.path.partition('?')
        self.entry = {'method': self.command, 'path': raw_path, 'query': raw_query,
                      'range': self.headers.get('Range'), 'if_match': self.headers.get('If-Match'),
                      'payload': self.headers.get('x-amz-content-sha256'),
                      'checksum': self.headers.get('x-amz-checksum-sha256') is not None}
        if raw_path.startswith('/_/'):
            return self.control(raw_path, raw_query)
        with lock:
            log.append(self.entry)
        if self.headers.get('Transfer-Encoding', '').lower() == 'chunked':
            return self.error(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.')
        fault = None
        with lock:
            for f in faults:
                if f.matches(self.command, raw_path, raw_query, self.headers.get('Range')):
                    f.left -= 1
                    fault = f.d
                    break
        self.entry['fault'] = fault and fault['action']
        length = int(self.headers.get('Content-Length') or 0)
        if fault and fault['action'] == 'reset_upload':
            self.rfile.read(min(length, fault.get('after', 0)))
            return self.reset_connection()
        body = self.rfile.read(length)
        self.entry['bytes'] = len(body)
        if fault and fault['action'] == 'reset_request':
            return self.reset_connection()
        bucket, key, query = self.split_target(raw_path, raw_query)
        if not self.verify(raw_path, raw_query, body):
            return
        self.entry['verified'] = True
        if fault and fault['action'] == 'status':
            extra = {'Retry-After': str(fault['retry_after'])} if 'retry_after' in fault else None
            self.entry['status'] = fault['status']
            return self.reply(fault['status'], xml_error(fault.get('code', 'InternalError'), 'injected'), extra)
        if fault and fault['action'] == 'delay':
            time.sleep(fault.get('seconds', 1))
        if fault and fault['action'] == 'complete_error':
            # S3 sends 200 first and the outcome of a long CompleteMultipartUpload in the body.
            return self.reply(200, xml_error(fault.get('code', 'InternalError'), 'injected'))
        if self.command == 'DELETE' and 'uploadId' in query:
            return self.abort_upload(bucket, query['uploadId'])
        if self.command == 'GET' and key == '' and 'uploads' in query:
            return self.list_uploads(bucket)
        if 'uploadId' in query and not self.upload_dir(bucket, query['uploadId']):
            return self.error(404, 'NoSuchUpload', 'The specified upload does not exist.')
        if self.command == 'POST' and 'uploadId' in query and not self.check_complete(bucket, query['uploadId'], body):
            return
        self.forward(bucket, key, raw_query, body, fault)

    def control(self, path, query):
        global faults, clock_offset, log, page_size
        if path == '/_/log':
            with lock:
                data = json.dumps(log).encode()
            return self.reply(200, data, ctype='application/json')
        if path == '/_/reset':
            with lock:
                log = []
                faults = []
            return self.reply(200, b'ok', ctype='text/plain')
        if path == '/_/faults':
            rules = json.loads(self.rfile.read(int(self.headers.get('Content-Length') or 0)) or b'[]')
            with lock:
                faults = [Fault(r) for r in rules]
            return self.reply(200, b'ok', ctype='text/plain')
        if path == '/_/clock':
            clock_offset = float(urllib.parse.parse_qs(query)['offset'][0])
            return self.reply(200, b'ok', ctype='text/plain')
        if path == '/_/page':
            page_size = int(urllib.parse.parse_qs(query)['size'][0])
            return self.reply(200, b'ok', ctype='text/plain')
        if path == '/_/uploads':
            found = []
            for b in os.listdir(args.root):
                d = os.path.join(args.root, b, '._S3rver_uploads')
                if os.path.isdir(d):
                    found += [{'bucket': b, 'upload_id': u} for u in os.listdir(d)]
            return self.reply(200, json.dumps(found).encode(), ctype='application/json')
        return self.reply(404, b'', ctype='text/plain')

    def split_target(self, raw_path, raw_query):
        """Bucket and key from a path-style or virtual-hosted request, decoded."""
        host = self.headers.get('Host', '').rsplit(':', 1)[0]
        path = urllib.parse.unquote(raw_path)
        if args.vhost_suffix and host.endswith('.' + args.vhost_suffix):
            bucket, key = host[:-len(args.vhost_suffix) - 1], path[1:]
        else:
            bucket, _, key = path[1:].partition('/')
        return bucket, key, dict(self.query_pairs(raw_query))

    @staticmethod
    def query_pairs(raw_query):
        # '+' in a query is a plus here, as S3 reads it: only %XX escapes are decoded.
        pairs = []
        for part in raw_query.split('&') if raw_query else []:
            k, _, v = part.partition('=')
            pairs.append((urllib.parse.unquote(k), urllib.parse.unquote(v)))
        return pairs

    # -- SigV4 ---------------------------------------------------------------------------------
    def verify(self, raw_path, raw_query, body):
        q = self.query_pairs(raw_query)
        qd = dict(q)
        auth = self.headers.get('Authorization')
        presigned = 'X-Amz-Algorithm' in qd
        if bool(auth) == presigned:
            return self.error(403, 'AccessDenied', 'Exactly one of Authorization or X-Amz-Algorithm is required')
        if presigned:
            cred, signed, sig = qd.get('X-Amz-Credential', ''), qd.get('X-Amz-SignedHeaders', ''), qd.get('X-Amz-Signature', '')
            amz_date, token = qd.get('X-Amz-Date', ''), qd.get('X-Amz-Security-Token')
        else:
            if not auth.startswith('AWS4-HMAC-SHA256 '):
                return self.error(400, 'InvalidArgument', 'Unsupported Authorization Type')
            fields = dict(p.strip().split('=', 1) for p in auth[len('AWS4-HMAC-SHA256 '):].split(',') if '=' in p)
            cred, signed, sig = fields.get('Credential', ''), fields.get('SignedHeaders', ''), fields.get('Signature', '')
            amz_date, token = self.headers.get('x-amz-date', ''), self.headers.get('x-amz-security-token')
        akid, _, scope = cred.partition('/')
        self.entry['akid'] = akid
        if akid not in keys:
            load_keys()
        k = keys.get(akid)
        if not k:
            return self.error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
        if (k.get('token') or None) != (token or None):
            return self.error(403, 'InvalidToken', 'The provided token is malformed or otherwise invalid.')
        if k.get('expires') and now() > k['expires']:
            return self.error(400, 'ExpiredToken', 'The provided token has expired.')
        try:
            t = calendar.timegm(time.strptime(amz_date, '%Y%m%dT%H%M%SZ'))
        except ValueError:
            return self.error(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header')
        if scope != '%s/%s/s3/aws4_request' % (amz_date[:8], args.region):
            return self.error(403, 'SignatureDoesNotMatch', 'bad credential scope %s' % scope)
        if presigned:
            expires = int(qd.get('X-Amz-Expires', '0'))
            if now() < t - 900 or now() > t + expires:
                return self.error(403, 'AccessDenied', 'Request has expired')
        elif abs(now() - t) > 900:
            self.entry['skewed'] = True
            return self.error(403, 'RequestTimeTooSkewed',
                              'The difference between the request time and the current time is too large.')
        signed_names = signed.split(';')
        if 'host' not in signed_names:
            return self.error(403, 'AccessDenied', 'host must be signed')
        for name in self.headers.keys():
            if name.lower().startswith('x-amz-') and name.lower() not in signed_names and not presigned:
                return self.error(403, 'AccessDenied', 'header %s is not signed' % name)
        payload = self.headers.get('x-amz-content-sha256')
        if not presigned:
            if not payload:
                return self.error(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256')
            if payload != 'UNSIGNED-PAYLOAD' and payload != hashlib.sha256(body).hexdigest():
                return self.error(400, 'XAmzContentSHA256Mismatch',
                                  "The provided 'x-amz-content-sha256' header does not match what was computed.")
        checksum = self.headers.get('x-amz-checksum-sha256')
        if checksum and checksum != base64.b64encode(hashlib.sha256(body).digest()).decode():
            return self.error(400, 'BadDigest', 'The SHA256 you specified did not match the calculated checksum.')

        # The request as botocore would have built it: the key decoded off the wire and encoded
        # again by botocore's rules, the parameters decoded and left to botocore to encode.
        canonical_path = percent_encode(urllib.parse.unquote(raw_path), safe='/~')
        url = 'http://%s%s' % (self.headers.get('Host'), canonical_path)
        params = [(n, v) for n, v in q if n != 'X-Amz-Signature']
        headers = {}
        for name in signed_names:
            if self.headers.get(name) is None:
                return self.error(403, 'SignatureDoesNotMatch', 'signed header %s is missing' % name)
            headers[name] = ','.join(self.headers.get_all(name))
        req = AWSRequest(method=self.command, url=url, headers=headers, data=body, params=params)
        req.context['timestamp'] = amz_date
        creds = Credentials(akid, k['secret'], k.get('token'))
        if presigned:
            signer = S3SigV4QueryAuth(creds, 's3', args.region, expires=int(qd['X-Amz-Expires']))
        else:
            signer = S3SigV4Auth(creds, 's3', args.region)
            if signer.signed_headers(signer.headers_to_sign(req)) != signed:
                return self.error(403, 'SignatureDoesNotMatch', 'SignedHeaders %s are not the canonical list' % signed)
        canonical = signer.canonical_request(req)
        string_to_sign = signer.string_to_sign(req, canonical)
        expected = signer.signature(string_to_sign, req)
        if expected != sig:
            self.entry['bad_signature'] = True
            return self.error(403, 'SignatureDoesNotMatch',
                              'The request signature we calculated does not match the signature you provided.',
                              '<CanonicalRequest>%s</CanonicalRequest><StringToSign>%s</StringToSign>'
                              % (esc(canonical), esc(string_to_sign)))
        return True

    # -- multipart bookkeeping over s3rver's files ---------------------------------------------
    def upload_dir(self, bucket, upload_id):
        d = os.path.join(args.root, bucket, '._S3rver_uploads', os.path.basename(upload_id))
        return d if upload_id and os.path.isdir(d) else None

    def abort_upload(self, bucket, upload_id):
        d = self.upload_dir(bucket, upload_id)
        if not d:
            return self.error(404, 'NoSuchUpload', 'The specified upload does not exist.')
        shutil.rmtree(d)
        return self.reply(204)

    def list_uploads(self, bucket):
        d = os.path.join(args.root, bucket, '._S3rver_uploads')
        items = ''
        for u in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            with open(os.path.join(d, u, 'key')) as f:
                items += '<Upload><Key>%s</Key><UploadId>%s</UploadId></Upload>' % (esc(f.read()), u)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>%s</Bucket>'
                '<IsTruncated>false</IsTruncated>%s</ListMultipartUploadsResult>' % (esc(bucket), items))
        return self.reply(200, body.encode())

    def check_complete(self, bucket, upload_id, body):
        import xml.etree.ElementTree as ET
        d = self.upload_dir(bucket, upload_id)
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self.error(400, 'MalformedXML', 'The XML you provided was not well-formed')
        parts = []
        for p in root:
            if p.tag.split('}')[-1] != 'Part':
                continue
            f = {c.tag.split('}')[-1]: (c.text or '') for c in p}
            parts.append((int(f.get('PartNumber', '0')), f.get('ETag', '').strip('"')))
        if not parts:
            return self.error(400, 'MalformedXML', 'no parts')
        numbers = [n for n, _ in parts]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            return self.error(400, 'InvalidPartOrder', 'The list of parts was not in ascending order.')
        for i, (n, etag) in enumerate(parts):
            pf = os.path.join(d, str(n))
            if not os.path.exists(pf + '.md5') or open(pf + '.md5').read() != etag:
                return self.error(400, 'InvalidPart', 'One or more of the specified parts could not be found or '
                                  'the ETag did not match (part %d).' % n)
            if i < len(parts) - 1 and os.path.getsize(pf) < MIN_PART:
                return self.error(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed '
                                  'size (part %d).' % n)
        return True

    # -- forwarding ------------------------------------------------------------------------------
    def forward(self, bucket, key, raw_query, body, fault):
        query = '&'.join(p for p in raw_query.split('&') if p and not p.startswith('X-Amz-'))
        if self.command == 'GET' and not key and 'list-type=2' in query.split('&'):
            return self.list_objects(bucket, query)
        path = '/' + urllib.parse.quote(bucket) + ('/' + urllib.parse.quote(key, safe='/~') if key else '')
        skip = {'authorization', 'host', 'connection', 'x-amz-security-token', 'x-amz-content-sha256',
                'x-amz-date', 'content-length', 'expect'}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        conn = http.client.HTTPConnection(args.upstream_host, args.upstream_port, timeout=120)
        try:
            try:
                conn.request(self.command, path + ('?' + query if query else ''), body=body if body else None,
                             headers=dict(headers, **{'Content-Length': str(len(body))}) if self.command in ('PUT', 'POST') else headers)
                up = conn.getresponse()
            except OSError as e:
                return self.error(502, 'BadGateway', 's3rver: %s' % e)
            data_len = up.getheader('Content-Length')
            hop = {'connection', 'keep-alive', 'transfer-encoding', 'date', 'content-length'}
            out_headers = [(k, v) for k, v in up.getheaders() if k.lower() not in hop]
            cr = up.getheader('Content-Range')
            if cr and cr.endswith('/0'):
                return self.error(416, 'InvalidRange', 'The requested range is not satisfiable')
            if fault and fault['action'] == 'bad_range':
                out_headers = [(k, self.shift_range(v) if k.lower() == 'content-range' else v) for k, v in out_headers]
            if fault and fault['action'] == 'total':
                out_headers = [(k, v.rpartition('/')[0] + '/%d' % fault['total'] if k.lower() == 'content-range' else v)
                               for k, v in out_headers]
            if data_len is None:
                data = up.read()
                data_len = len(data)
                chunks = [data]
            else:
                data_len = int(data_len)
                chunks = None
            self.send_response(up.status)
            for k, v in out_headers:
                self.send_header(k, v)
            self.send_header('Content-Length', str(data_len))
            self.end_headers()
            self.entry['status'] = up.status
            if self.command == 'HEAD':
                return
            sent, limit = 0, None
            if fault and fault['action'] in ('reset', 'stall'):
                limit = fault.get('after', 0)
            source = iter(chunks) if chunks is not None else iter(lambda: up.read(1 << 20), b'')
            for chunk in source:
                if limit is not None and sent + len(chunk) >= limit:
                    self.wfile.write(chunk[:limit - sent])
                    self.wfile.flush()
                    if fault['action'] == 'stall':
                        time.sleep(fault.get('seconds', 10))
                    return self.reset_connection()
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            conn.close()

    def list_objects(self, bucket, query):
        import xml.etree.ElementTree as ET
        q = dict(self.query_pairs(query))
        upstream = '&'.join(p for p in query.split('&')
                            if p.split('=')[0] not in ('max-keys', 'continuation-token', 'delimiter'))
        conn = http.client.HTTPConnection(args.upstream_host, args.upstream_port, timeout=120)
        try:
            conn.request('GET', '/' + urllib.parse.quote(bucket) + '?' + upstream)
            up = conn.getresponse()
            data = up.read()
        finally:
            conn.close()
        if up.status != 200:
            self.entry['status'] = up.status
            return self.reply(up.status, data)
        root = ET.fromstring(data)
        for el in root.iter():
            el.tag = el.tag.split('}')[-1]
        prefix, delim = q.get('prefix', ''), q.get('delimiter', '')
        entries, seen = [], set()
        for c in root.findall('Contents'):
            k = c.find('Key').text or ''
            rest = k[len(prefix):]
            if delim and delim in rest:
                cp = prefix + rest[:rest.index(delim) + len(delim)]
                if cp not in seen:
                    seen.add(cp)
                    entries.append((cp, '<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>' % esc(cp)))
            else:
                entries.append((k, ET.tostring(c, encoding='unicode')))
        entries.sort()
        after = base64.urlsafe_b64decode(q['continuation-token']).decode() if q.get('continuation-token') else None
        if after is not None:
            entries = [e for e in entries if e[0] > after]
        limit = min(int(q.get('max-keys', '1000')), page_size or 1000)
        page, more = entries[:limit], len(entries) > limit
        body = '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        body += '<Name>%s</Name><Prefix>%s</Prefix><KeyCount>%d</KeyCount><MaxKeys>%d</MaxKeys>' % (
            esc(bucket), esc(q.get('prefix', '')), len(page), limit)
        if q.get('delimiter'):
            body += '<Delimiter>%s</Delimiter>' % esc(q['delimiter'])
        body += '<IsTruncated>%s</IsTruncated>' % ('true' if more else 'false')
        if more:
            body += '<NextContinuationToken>%s</NextContinuationToken>' % base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        for _, x in page:
            body += x
        body += '</ListBucketResult>'
        return self.reply(200, body.encode())

    @staticmethod
    def shift_range(v):
        unit, _, rest = v.partition(' ')
        span, _, total = rest.partition('/')
        a, _, b = span.partition('-')
        return '%s %d-%s/%s' % (unit, int(a) + 1, b, total)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, default=0)
    p.add_argument('--port-file')
    p.add_argument('--upstream', required=True, help='s3rver address, host:port')
    p.add_argument('--root', required=True, help="s3rver's data directory")
    p.add_argument('--keys', required=True)
    p.add_argument('--region', default='us-east-1')
    p.add_argument('--vhost-suffix', default='localhost', help='Host names <bucket>.<suffix> are virtual-hosted')
    args = p.parse_args()
    args.upstream_host, _, port = args.upstream.rpartition(':')
    args.upstream_port = int(port)
    load_keys()
    srv = Server(('127.0.0.1', args.port), Handler)
    if args.port_file:
        with open(args.port_file + '.tmp', 'w') as f:
            f.write(str(srv.server_address[1]))
        os.rename(args.port_file + '.tmp', args.port_file)
    print('listening', srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == '__main__':
    main()
