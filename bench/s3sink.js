// bench/s3sink.js: an S3 endpoint that costs (almost) nothing, to measure S3 clients without
// s3rver's own work (disk writes, MD5 of every part, the object assembled again at completion).
// Uploads are read and discarded (the bytes of each part counted); every GET and HEAD serves the
// file given on the command line, with ranges. No signature is checked. Loopback only.
//   node bench/s3sink.js FILE           prints "s3sink listening on 127.0.0.1:PORT"
'use strict';
const http = require('http');
const fs = require('fs');

const file = process.argv[2];
if (!file) {
  console.error('usage: node s3sink.js FILE');
  process.exit(2);
}
const size = fs.statSync(file).size;
const etag = '"' + 'b'.repeat(32) + '"';
let uploads = 0;

function send(res, status, headers, body) {
  res.writeHead(status, Object.assign({ 'Content-Length': body ? Buffer.byteLength(body) : 0 }, headers));
  res.end(body || '');
}

function xml(res, body) {
  send(res, 200, { 'Content-Type': 'application/xml' }, '<?xml version="1.0" encoding="UTF-8"?>' + body);
}

function serve(req, res) {
  const head = { 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': new Date(0).toUTCString(),
                 'Content-Type': 'application/octet-stream' };
  if (req.method === 'HEAD') {
    res.writeHead(200, Object.assign({ 'Content-Length': size }, head));
    return res.end();
  }
  let start = 0, end = size - 1, status = 200;
  const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range || '');
  if (m) {
    start = Number(m[1]);
    end = m[2] ? Math.min(Number(m[2]), size - 1) : size - 1;
    if (start >= size)
      return send(res, 416, { 'Content-Range': `bytes */${size}` });
    status = 206;
    head['Content-Range'] = `bytes ${start}-${end}/${size}`;
  }
  res.writeHead(status, Object.assign({ 'Content-Length': end - start + 1 }, head));
  fs.createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(res);
}

const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://sink');
  const q = u.searchParams;
  if (req.method === 'GET' || req.method === 'HEAD')
    return serve(req, res);
  const chunks = [];
  let n = 0;
  const small = req.method === 'POST';
  req.on('data', c => {
    n += c.length;
    if (small)
      chunks.push(c);
  });
  req.on('end', () => {
    if (req.method === 'POST' && q.has('uploads'))
      return xml(res, `<InitiateMultipartUploadResult><UploadId>u${++uploads}</UploadId></InitiateMultipartUploadResult>`);
    if (req.method === 'POST' && q.has('uploadId')) {
      const parts = (Buffer.concat(chunks).toString().match(/<PartNumber>/g) || []).length;
      return xml(res, `<CompleteMultipartUploadResult><ETag>"${'c'.repeat(32)}-${parts}"</ETag></CompleteMultipartUploadResult>`);
    }
    if (req.method === 'PUT')
      return send(res, 200, { ETag: etag });
    if (req.method === 'DELETE')
      return send(res, 204, {});
    send(res, 400, {}, `unsupported: ${req.method} ${req.url} (${n} bytes)`);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => console.log(`s3sink listening on 127.0.0.1:${server.address().port}`));
