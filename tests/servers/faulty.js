#!/usr/bin/env node
// A small HTTP object server for tests that can misbehave on purpose.
//
// Serves files under --root: GET/HEAD (single Range, strong ETag, Last-Modified), PUT, DELETE.
// A path /_f/<rules>/<object> applies fault rules to that object; rules are comma separated,
// each ending in x<count> (how many requests it hits before the object is served normally):
//   s<code>x<n>          answer <code> (e.g. s500x2); with ra<secs> also Retry-After (s503ra1x1)
//   reset<bytes>x<n>     GET: send <bytes> of the body, then drop the connection;
//                        PUT: drop the connection after receiving <bytes>
//   stall<bytes>x<n>     GET: send <bytes>, then send nothing more (the client must give up);
//                        PUT: stop reading after <bytes> (the client's sending blocks) and never answer
//   norangex<n>          ignore Range and answer 200 with the whole object
//   badrangex<n>         answer a Range request with a Content-Range that starts elsewhere
//   total<size>x<n>      answer a Range request with a Content-Range naming <size> as the object's size
//   short<bytes>x<n>     answer a Range request with <bytes> fewer than asked for (a consistent
//                        Content-Range and Content-Length that end early, not at the object's end)
//   etagx<n>             change the object's ETag for this many requests
//   delay<ms>x<n>        PUT: store the object, answer <ms> later; GET: answer <ms> late
//   losex<n>             PUT: store the object, then drop the connection without an answer
// A rule written <rule>a<k>x<n> lets the object's first <k> requests pass before it fires (a
// fault in the parts of a parallel download, not in its first GET).
// A rule written <rule>~<suffix>x<n> fires only for objects whose name ends in .<suffix> (e.g.
// delay4000~logx99 slows down log chunks but not status.json).
// POST to any path records the body in the log (status callbacks) and answers 200.
// Requests in absolute form (a client using this server as its HTTP proxy) are served too.
// GET /_log gives the requests seen as JSON; POST /_reset forgets rules' counters and the log.
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const root = path.resolve(args.root || '.');
const hits = new Map();
let log = [];

function parseRules(spec) {
  return spec.split(',').filter(Boolean).map((r) => {
    const m = /^(s(\d{3})(?:ra(\d+))?|reset(\d+)|stall(\d+)|delay(\d+)|lose|norange|badrange|etag|total(\d+)|short(\d+))(?:~(\w+))?(?:a(\d+))?x(\d+)$/.exec(r);
    if (!m) throw new Error('bad rule ' + r);
    return { text: r, status: m[2] && +m[2], retryAfter: m[3], reset: m[4] && +m[4], stall: m[5] && +m[5],
             delay: m[6] && +m[6], lose: r.startsWith('lose'),
             norange: r.startsWith('norange'), badrange: r.startsWith('badrange'), etag: r.startsWith('etag'),
             total: m[7], short: m[8] && +m[8], suffix: m[9], after: +(m[10] || 0), count: +m[11] };
  });
}

// Returns the rules that fire for this request (each rule counts its own hits).
function firing(rules, key) {
  return rules.filter((r) => {
    if (r.suffix && !key.endsWith('.' + r.suffix)) return false;
    const k = key + '|' + r.text;
    const n = hits.get(k) || 0;
    if (n >= r.after + r.count) return false;
    hits.set(k, n + 1);
    return n >= r.after;
  });
}

function objectPath(p) {
  const full = path.resolve(root, '.' + decodeURIComponent(p));
  if (!full.startsWith(root)) return null;
  return full;
}

const server = http.createServer((req, res) => {
  let url = req.url;
  const proxied = /^https?:\/\//.test(url);
  if (proxied) url = new URL(url).pathname + (new URL(url).search || '');
  const entry = { method: req.method, url, proxied, range: req.headers['range'] || null,
                  ifMatch: req.headers['if-match'] || null, auth: req.headers['authorization'] ? 'present' : null,
                  expect: req.headers['expect'] || null, chunked: req.headers['transfer-encoding'] === 'chunked' };
  if (url === '/_log') { res.setHeader('Content-Type', 'application/json'); res.end(JSON.stringify(log)); return; }
  if (url === '/_reset') { hits.clear(); log = []; res.end('ok'); return; }
  log.push(entry);
  let rules = [];
  let objPathname = url.split('?')[0];
  const fm = /^\/_f\/([^/]+)(\/.*)$/.exec(objPathname);
  if (fm) { rules = firing(parseRules(fm[1]), req.method + ' ' + fm[2]); objPathname = fm[2]; }
  const file = objectPath(objPathname);
  if (!file) { res.statusCode = 400; res.end(); return; }
  entry.fired = rules.map((r) => r.text);

  const statusRule = rules.find((r) => r.status);
  if (statusRule) {
    req.resume();
    req.on('end', () => {
      if (statusRule.retryAfter) res.setHeader('Retry-After', statusRule.retryAfter);
      res.statusCode = statusRule.status;
      res.end(`<Error><Code>Injected${statusRule.status}</Code></Error>`);
    });
    return;
  }

  if (req.method === 'POST') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => { entry.body = Buffer.concat(chunks).toString('utf8'); res.statusCode = 200; res.end('{}'); });
    return;
  }
  if (req.method === 'PUT') {
    const reset = rules.find((r) => r.reset !== undefined);
    const stall = rules.find((r) => r.stall !== undefined);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = file + '.upload-' + process.pid + '-' + Math.random().toString(16).slice(2);
    const out = fs.createWriteStream(tmp);
    out.on('error', () => {});
    let received = 0, aborted = false;
    const abort = () => { if (aborted) return; aborted = true; out.destroy(); fs.rmSync(tmp, { force: true }); };
    req.on('data', (chunk) => {
      if (aborted) return;
      received += chunk.length;
      if (reset && received >= reset.reset) { abort(); req.socket.destroy(); return; }
      if (stall && received >= stall.stall) { req.pause(); req.socket.on('close', abort); return; }
      out.write(chunk);
    });
    const delay = rules.find((r) => r.delay !== undefined);
    const lose = rules.find((r) => r.lose);
    const digest = crypto.createHash('sha1');
    req.on('data', (chunk) => digest.update(chunk));
    req.on('end', () => {
      if (aborted) return;
      out.end(() => {
        fs.renameSync(tmp, file);
        entry.received = received;
        entry.sha1 = digest.digest('hex');
        if (lose) { req.socket.destroy(); return; }
        setTimeout(() => { res.statusCode = 201; res.end(); }, delay ? delay.delay : 0);
      });
    });
    req.on('error', abort);
    req.on('aborted', abort);
    return;
  }
  if (req.method === 'DELETE') {
    fs.rm(file, (err) => { res.statusCode = err ? 404 : 204; res.end(); });
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') { res.statusCode = 405; res.end(); return; }
  const getDelay = rules.find((r) => r.delay !== undefined);
  if (getDelay) { setTimeout(() => serveGet(req, res, rules, file), getDelay.delay); return; }
  serveGet(req, res, rules, file);
});

function serveGet(req, res, rules, file) {

  let st;
  try { st = fs.statSync(file); } catch (e) { res.statusCode = 404; res.end('not found'); return; }
  if (!st.isFile()) { res.statusCode = 404; res.end(); return; }
  let etag = '"' + crypto.createHash('sha1').update(st.size + ':' + st.mtimeMs).digest('hex') + '"';
  if (rules.find((r) => r.etag)) etag = '"changed-' + Date.now() + '"';
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', st.mtime.toUTCString());
  res.setHeader('Accept-Ranges', 'bytes');
  if (req.headers['if-match'] && req.headers['if-match'] !== etag) { res.statusCode = 412; res.end(); return; }
  let start = 0, end = st.size - 1, status = 200;
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers['range'] || '');
  if (range && !rules.find((r) => r.norange)) {
    start = +range[1];
    if (range[2]) end = Math.min(+range[2], st.size - 1);
    const short = rules.find((r) => r.short);
    if (short) end = Math.max(start, end - short.short);
    if (start >= st.size) { res.statusCode = 416; res.setHeader('Content-Range', `bytes */${st.size}`); res.end(); return; }
    status = 206;
    const shown = rules.find((r) => r.badrange) ? start + 1 : start;
    const total = rules.find((r) => r.total);
    res.setHeader('Content-Range', `bytes ${shown}-${end}/${total ? total.total : st.size}`);
  }
  res.statusCode = status;
  res.setHeader('Content-Length', end - start + 1);
  if (req.method === 'HEAD' || st.size === 0) { res.end(); return; }
  const cut = rules.find((r) => r.reset !== undefined || r.stall !== undefined);
  const stream = fs.createReadStream(file, { start, end, highWaterMark: 64 * 1024 });
  if (!cut) { stream.pipe(res); return; }
  const limit = cut.reset !== undefined ? cut.reset : cut.stall;
  let sent = 0;
  stream.on('data', (chunk) => {
    const room = limit - sent;
    if (room > 0) { res.write(chunk.subarray(0, Math.min(room, chunk.length))); sent += Math.min(room, chunk.length); }
    if (sent >= limit) {
      stream.destroy();
      if (cut.reset !== undefined) setTimeout(() => req.socket.destroy(), 50);
      // stall: keep the socket open and silent until the client hangs up
    }
  });
}

server.keepAliveTimeout = 30000;
server.listen(+(args.port || 0), '127.0.0.1', () => {
  const port = server.address().port;
  if (args['port-file']) fs.writeFileSync(args['port-file'], String(port));
  process.stdout.write(`listening ${port}\n`);
});
