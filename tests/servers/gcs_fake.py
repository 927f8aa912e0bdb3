#!/usr/bin/env python3
"""A protocol fake of Google Cloud Storage for the gs:// store's tests (stdlib, plus Debian's
python3-crcmod for CRC-32C), written from Google's documentation of:

- the JSON API objects resource: GET .../b/B/o/NAME (metadata; alt=media with Range and
  generation=, 404 for a generation that is not the live one, x-goog-generation and x-goog-hash
  crc32c + md5 on every media answer), GET .../b/B/o (prefix, delimiter, pageToken, maxResults; at
  most --page-size items a page), DELETE with ifGenerationMatch (412 on a mismatch), POST
  .../o/DEST/compose (at most 32 sourceObjects; composite objects have crc32c but no md5Hash);
- uploads at /upload/storage/v1/b/B/o: uploadType=multipart (multipart/related, the metadata's
  crc32c must match the bytes: 400 otherwise) and uploadType=resumable: the POST answers with the
  session URI in Location; PUTs with "Content-Range: bytes A-B/T|*" must start where the session
  stands and, but for the last, be multiples of 256 KiB (400 otherwise); 308 with "Range:
  bytes=0-N" (none when nothing is held) while incomplete, 200 with the object at the end; a PUT
  with "bytes */T" or "bytes */*" asks for the status;
- the XML API multipart upload at /B/NAME: POST ?uploads, PUT ?partNumber=N&uploadId=U (ETag),
  POST ?uploadId=U with CompleteMultipartUpload (parts in order; all but the last at least
  5 MiB), DELETE ?uploadId=U.

Every request must carry "Authorization: Bearer T" with a token that --tokeninfo (the Google auth
fake's tokeninfo URL) calls live, or --token; 401 otherwise, logged with auth=false.

Faults: POST /_/faults with a JSON list of rules {"match": {"op": "chunk"|"media"|"compose"|
"part"|"multipart"|"status"|"any"}, "times": N, "skip": K, "action": ...}, action one of
{"status": 503}, "drop" (the session keeps the first half of a chunk, rounded down to 256 KiB, and
the connection is closed without an answer), "gone" (the session is deleted: 404 from then on), "corrupt" (a media answer's first byte is
flipped, its x-goog-hash kept).
GET /_/log lists the requests (method, path, op, status, auth, content_range); GET /_/objects the
objects (name, size, generation, crc32c, components); GET /_/sessions the open sessions and XML
uploads; POST /_/reset forgets the log and faults.
"""
import argparse
import base64
import os
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import crcmod.predefined

crc32c_fn = crcmod.predefined.mkCrcFun('crc-32c')
UNIT = 256 * 1024
args = None
lock = threading.Lock()
objects = {}     # (bucket, name) -> dict(data, generation, crc32c, md5, components)
sessions = {}    # id -> dict(bucket, name, data(bytearray), total)
xml_uploads = {} # id -> dict(bucket, name, parts {n: (etag, bytes)})
log = []
faults = []
token_cache = {}
gen_counter = [int(time.time() * 1e6)]


def b64_crc(data):
    return base64.b64encode(crc32c_fn(bytes(data)).to_bytes(4, 'big')).decode()


def make_object(bucket, name, data, components=1):
    with lock:
        gen_counter[0] += 1
        o = {'data': bytes(data), 'generation': gen_counter[0], 'crc32c': b64_crc(data),
             'md5': base64.b64encode(hashlib.md5(data).digest()).decode() if components == 1 else None,
             'components': components, 'updated': time.time()}
        objects[(bucket, name)] = o
    return o


def resource(bucket, name, o):
    r = {'kind': 'storage#object', 'bucket': bucket, 'name': name, 'size': str(len(o['data'])),
         'generation': str(o['generation']), 'metageneration': '1', 'crc32c': o['crc32c'],
         'etag': 'E' + str(o['generation']), 'contentType': 'application/octet-stream',
         'updated': time.strftime('%Y-%m-%dT%H:%M:%S.000Z', time.gmtime(o['updated']))}
    if o['md5']:
        r['md5Hash'] = o['md5']
    if o['components'] > 1:
        r['componentCount'] = o['components']
    return r


def token_live(tok):
    if args.token:
        return tok == args.token
    now = time.time()
    with lock:
        if token_cache.get(tok, 0) > now:
            return True
    url = args.tokeninfo + '?' + urllib.parse.urlencode({'access_token': tok})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            ok = r.status == 200
    except Exception:
        ok = False
    if ok:
        with lock:
            token_cache[tok] = now + 2
    return ok


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b'', ctype='application/json', headers=()):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.entry['status'] = status
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body or status not in (204, 304):
            self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def error(self, status, msg):
        self.reply(status, {'error': {'code': status, 'message': msg, 'errors': [{'message': msg}]}})

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_DELETE(self):
        self.handle_any()

    def handle_any(self):
        u = urllib.parse.urlsplit(self.path)
        self.q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query, keep_blank_values=True).items()}
        self.upath = u.path
        self.entry = {'method': self.command, 'path': u.path, 'query': u.query,
                      'content_range': self.headers.get('Content-Range')}
        if u.path.startswith('/_/'):
            return self.control(u.path)
        with lock:
            log.append(self.entry)
        data = self.body()
        auth = self.headers.get('Authorization', '')
        self.entry['auth'] = auth.startswith('Bearer ') and token_live(auth[7:])
        if not self.entry['auth']:
            return self.error(401, 'Invalid Credentials')
        try:
            self.route(data)
        except BrokenPipeError:
            pass

    def control(self, path):
        if path == '/_/log':
            with lock:
                return self.reply(200, log)
        if path == '/_/objects':
            with lock:
                return self.reply(200, [dict(name=n, bucket=b, size=len(o['data']), generation=o['generation'],
                                             crc32c=o['crc32c'], components=o['components'])
                                        for (b, n), o in objects.items()])
        if path == '/_/sessions':
            with lock:
                return self.reply(200, {'resumable': len(sessions), 'xml': len(xml_uploads)})
        if path == '/_/faults':
            rules = json.loads(self.body() or b'[]')
            with lock:
                faults[:] = rules
            return self.reply(200, {})
        if path == '/_/reset':
            self.body()
            with lock:
                log.clear()
                faults.clear()
            return self.reply(200, {})
        self.reply(404, {})

    def fault(self, op):
        with lock:
            for f in faults:
                m = f.get('match', {}).get('op', 'any')
                if m != 'any' and m != op:
                    continue
                if f.get('skip', 0) > 0:
                    f['skip'] -= 1
                    continue
                if f.get('times', 1) <= 0:
                    continue
                f['times'] = f.get('times', 1) - 1
                self.entry['fault'] = f['action']
                return f['action']
        return None

    def injected(self, op):
        """Applies a status fault; returns the action for the route to apply otherwise."""
        self.entry['op'] = op
        a = self.fault(op)
        if isinstance(a, dict) and 'status' in a:
            self.error(a['status'], 'injected fault')
            return 'done'
        return a

    # ---- routes ------------------------------------------------------------------------

    def route(self, data):
        p = self.upath
        m = self.command
        if p.startswith('/upload/storage/v1/b/'):
            bucket = p.split('/')[5]
            if 'upload_id' in self.q and m == 'PUT':
                return self.session_put(data)
            if m == 'POST' and self.q.get('uploadType') == 'multipart':
                return self.multipart(bucket, data)
            if m == 'POST' and self.q.get('uploadType') == 'resumable':
                return self.start_session(bucket, data)
            return self.error(400, 'unsupported upload')
        if p.startswith('/storage/v1/b/'):
            parts = p.split('/')
            bucket = parts[4]
            if len(parts) == 6 and parts[5] == 'o' and m == 'GET':
                return self.list(bucket)
            if len(parts) >= 7 and parts[5] == 'o':
                name = urllib.parse.unquote(parts[6])
                if len(parts) == 8 and parts[7] == 'compose' and m == 'POST':
                    return self.compose(bucket, name, data)
                if len(parts) == 7 and m == 'GET':
                    return self.get(bucket, name)
                if len(parts) == 7 and m == 'DELETE':
                    return self.delete(bucket, name)
            return self.error(404, 'no route')
        # XML API: /BUCKET/NAME
        segs = p.split('/', 2)
        if len(segs) == 3 and segs[2]:
            return self.xml(segs[1], urllib.parse.unquote(segs[2]), data)
        self.error(404, 'no route')

    def get(self, bucket, name):
        action = self.injected('media' if self.q.get('alt') == 'media' else 'meta')
        if action == 'done':
            return
        with lock:
            o = objects.get((bucket, name))
        if not o or ('generation' in self.q and int(self.q['generation']) != o['generation']):
            return self.error(404, 'No such object: %s/%s' % (bucket, name))
        if self.q.get('alt') != 'media':
            return self.reply(200, resource(bucket, name, o))
        d = o['data']
        if action == 'corrupt':
            d = bytes([d[0] ^ 1]) + d[1:]
        hashes = 'crc32c=' + o['crc32c'] + (',md5=' + o['md5'] if o['md5'] else '')
        hdr = [('x-goog-generation', str(o['generation'])), ('x-goog-hash', hashes), ('ETag', 'E%d' % o['generation'])]
        rng = self.headers.get('Range')
        if rng:
            a, _, b = rng[len('bytes='):].partition('-')
            a = int(a)
            b = min(int(b), len(d) - 1) if b else len(d) - 1
            if a >= len(d):
                return self.reply(416, {'error': {'code': 416, 'message': 'Requested range not satisfiable'}},
                                  headers=[('Content-Range', 'bytes */%d' % len(d))])
            return self.reply(206, d[a:b + 1], 'application/octet-stream',
                              hdr + [('Content-Range', 'bytes %d-%d/%d' % (a, b, len(d)))])
        self.reply(200, d, 'application/octet-stream', hdr)

    def list(self, bucket):
        if self.injected('list') == 'done':
            return
        prefix, delim = self.q.get('prefix', ''), self.q.get('delimiter', '')
        page = min(int(self.q.get('maxResults') or 1000), args.page_size)
        with lock:
            names = sorted(n for (b, n) in objects if b == bucket and n.startswith(prefix))
            found = []
            seen = set()
            for n in names:
                rest = n[len(prefix):]
                if delim and delim in rest:
                    pre = prefix + rest[:rest.index(delim) + 1]
                    if pre not in seen:
                        seen.add(pre)
                        found.append(('p', pre))
                else:
                    found.append(('o', n))
            start = int(self.q.get('pageToken') or 0)
            chunk = found[start:start + page]
            out = {'kind': 'storage#objects',
                   'items': [resource(bucket, n, objects[(bucket, n)]) for k, n in chunk if k == 'o'],
                   'prefixes': [n for k, n in chunk if k == 'p']}
        if start + page < len(found):
            out['nextPageToken'] = str(start + page)
        self.reply(200, out)

    def delete(self, bucket, name):
        if self.injected('delete') == 'done':
            return
        with lock:
            o = objects.get((bucket, name))
            if not o:
                return self.error(404, 'No such object: %s/%s' % (bucket, name))
            if 'ifGenerationMatch' in self.q and int(self.q['ifGenerationMatch']) != o['generation']:
                return self.error(412, 'Precondition Failed')
            del objects[(bucket, name)]
        self.reply(204)

    def multipart(self, bucket, data):
        if self.injected('multipart') == 'done':
            return
        ctype = self.headers.get('Content-Type', '')
        if not ctype.startswith('multipart/related') or 'boundary=' not in ctype:
            return self.error(400, 'multipart/related with a boundary expected')
        boundary = ctype.split('boundary=', 1)[1].strip('"').encode()
        pieces = data.split(b'--' + boundary)
        if len(pieces) != 4 or not pieces[3].startswith(b'--'):
            return self.error(400, 'a multipart upload has exactly two parts')
        def part(raw):
            head, _, body = raw.partition(b'\r\n\r\n')
            if not raw.startswith(b'\r\n') or not body.endswith(b'\r\n'):
                raise ValueError('malformed part')
            return head, body[:-2]
        try:
            (h1, meta), (h2, media) = part(pieces[1]), part(pieces[2])
        except ValueError as e:
            return self.error(400, str(e))
        if b'application/json' not in h1:
            return self.error(400, 'the first part must be the JSON metadata')
        md = json.loads(meta)
        name = md.get('name') or self.q.get('name')
        if not name:
            return self.error(400, 'Required object name')
        if 'crc32c' in md and md['crc32c'] != b64_crc(media):
            return self.error(400, 'Provided CRC32C "%s" doesn\'t match calculated CRC32C "%s".' %
                              (md['crc32c'], b64_crc(media)))
        o = make_object(bucket, name, media)
        self.reply(200, resource(bucket, name, o))

    def start_session(self, bucket, data):
        if self.injected('start') == 'done':
            return
        md = json.loads(data or b'{}')
        name = md.get('name') or self.q.get('name')
        if not name:
            return self.error(400, 'Required object name')
        sid = secrets.token_hex(12)
        total = self.headers.get('X-Upload-Content-Length')
        with lock:
            sessions[sid] = {'bucket': bucket, 'name': name, 'data': bytearray(),
                             'total': int(total) if total else None, 'done': None}
        loc = 'http://%s/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s' % (
            self.headers.get('Host'), bucket, sid)
        self.reply(200, b'', headers=[('Location', loc)])

    def session_state(self, s):
        if s['done']:
            o = objects.get((s['bucket'], s['name']))
            return self.reply(200, resource(s['bucket'], s['name'], o))
        n = len(s['data'])
        self.reply(308, b'', headers=[('Range', 'bytes=0-%d' % (n - 1))] if n else [])

    def session_put(self, data):
        sid = self.q['upload_id']
        cr = self.headers.get('Content-Range', '')
        op = 'status' if cr.startswith('bytes */') else 'chunk'
        action = self.injected(op)
        if action == 'done':
            return
        with lock:
            s = sessions.get(sid)
            if action == 'gone' and s:
                del sessions[sid]
                s = None
        if not s:
            return self.error(404, 'No such upload session')
        if not cr.startswith('bytes '):
            return self.error(400, 'Content-Range required')
        rng, _, total = cr[6:].partition('/')
        total = None if total == '*' else int(total)
        if rng == '*':
            if total is not None and len(s['data']) == total and not s['done']:
                self.finish_session(s)
            return self.session_state(s)
        a, _, b = rng.partition('-')
        a, b = int(a), int(b)
        if b - a + 1 != len(data):
            return self.error(400, 'Content-Range does not match the body')
        if s['done']:
            return self.session_state(s)
        if a != len(s['data']):
            return self.error(400, 'the chunk starts at %d, the session holds %d bytes' % (a, len(s['data'])))
        final = total is not None and b + 1 == total
        if not final and len(data) % UNIT:
            return self.error(400, 'a chunk that is not the last must be a multiple of 256 KiB')
        if s['total'] is not None and total is not None and total != s['total']:
            return self.error(400, 'the total changed')
        if action == 'drop':
            keep = len(data) // 2 // UNIT * UNIT
            s['data'] += data[:keep]
            self.entry['status'] = 'dropped'
            self.close_connection = True
            self.connection.shutdown(2)
            return
        s['data'] += data
        if final:
            self.finish_session(s)
        self.session_state(s)

    def finish_session(self, s):
        make_object(s['bucket'], s['name'], s['data'])
        s['done'] = True
        s['data'] = bytearray()

    def compose(self, bucket, name, data):
        if self.injected('compose') == 'done':
            return
        req = json.loads(data or b'{}')
        srcs = req.get('sourceObjects') or []
        if not srcs or len(srcs) > 32:
            return self.error(400, 'compose takes 1 to 32 sourceObjects')
        with lock:
            got = []
            for s in srcs:
                o = objects.get((bucket, s['name']))
                if not o:
                    return self.error(404, 'No such object: %s/%s' % (bucket, s['name']))
                got.append(o)
        comps = sum(o['components'] for o in got)
        if comps > 1024:
            return self.error(400, 'a composite object has at most 1024 components')
        o = make_object(bucket, name, b''.join(o['data'] for o in got), components=max(comps, 2))
        self.reply(200, resource(bucket, name, o))

    def xml_error(self, status, code, msg):
        self.reply(status, '<?xml version="1.0"?><Error><Code>%s</Code><Message>%s</Message></Error>' % (code, msg),
                   'application/xml')

    def xml(self, bucket, name, data):
        m = self.command
        if m == 'POST' and 'uploads' in self.q:
            if self.injected('xml-start') == 'done':
                return
            uid = secrets.token_urlsafe(24)
            with lock:
                xml_uploads[uid] = {'bucket': bucket, 'name': name, 'parts': {}}
            return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult '
                              'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>%s</Bucket><Key>%s</Key>'
                              '<UploadId>%s</UploadId></InitiateMultipartUploadResult>' % (bucket, name, uid),
                              'application/xml')
        uid = self.q.get('uploadId')
        with lock:
            up = xml_uploads.get(uid)
        if not up or up['bucket'] != bucket or up['name'] != name:
            return self.xml_error(404, 'NoSuchUpload', 'The requested upload was not found.')
        if m == 'PUT' and 'partNumber' in self.q:
            if self.injected('part') == 'done':
                return
            n = int(self.q['partNumber'])
            if not 1 <= n <= 10000:
                return self.xml_error(400, 'InvalidArgument', 'partNumber')
            h = self.headers.get('x-goog-hash', '')
            if h.startswith('crc32c=') and h[7:] != b64_crc(data):
                return self.xml_error(400, 'BadDigest', 'The CRC32C you specified did not match what we received.')
            etag = '"%s"' % hashlib.md5(data).hexdigest()
            with lock:
                up['parts'][n] = (etag, data)
            return self.reply(200, b'', headers=[('ETag', etag)])
        if m == 'DELETE':
            with lock:
                xml_uploads.pop(uid, None)
            return self.reply(204)
        if m == 'POST':
            if self.injected('xml-complete') == 'done':
                return
            try:
                root = ET.fromstring(data)
            except ET.ParseError:
                return self.xml_error(400, 'MalformedXML', 'bad XML')
            listed = [(int(p.findtext('{*}PartNumber') or p.findtext('PartNumber')),
                       p.findtext('{*}ETag') or p.findtext('ETag')) for p in root.iter() if p.tag.endswith('Part')]
            nums = [n for n, _ in listed]
            if nums != sorted(nums) or len(set(nums)) != len(nums) or not nums:
                return self.xml_error(400, 'InvalidPartOrder', 'parts must be in ascending order')
            body = []
            for i, (n, etag) in enumerate(listed):
                have = up['parts'].get(n)
                if not have or have[0] != etag:
                    return self.xml_error(400, 'InvalidPart', 'part %d' % n)
                if i < len(listed) - 1 and len(have[1]) < 5 * 1024 * 1024:
                    return self.xml_error(400, 'EntityTooSmall', 'part %d is smaller than 5 MiB' % n)
                body.append(have[1])
            o = make_object(bucket, name, b''.join(body), components=len(listed))
            with lock:
                xml_uploads.pop(uid, None)
            return self.reply(200, '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult>'
                              '<Bucket>%s</Bucket><Key>%s</Key><ETag>"E%d"</ETag></CompleteMultipartUploadResult>'
                              % (bucket, name, o['generation']), 'application/xml')
        self.xml_error(400, 'InvalidRequest', 'unsupported')


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument('--port-file', required=True)
    ap.add_argument('--tokeninfo', help="the Google auth fake's /tokeninfo URL")
    ap.add_argument('--token', help='a single accepted token (manual runs)')
    ap.add_argument('--page-size', type=int, default=1000)
    args = ap.parse_args()
    if not args.tokeninfo and not args.token:
        ap.error('--tokeninfo or --token is required')
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    srv.daemon_threads = True
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))

    os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
