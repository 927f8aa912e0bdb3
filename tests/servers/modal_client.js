#!/usr/bin/env node
// Modal's JavaScript SDK (npm `modal` 0.11.1) as a client of tests/servers/modal_fake.js, the
// other side of stepop's modal flavor. It reads MODAL_SERVER_URL, MODAL_TOKEN_ID and
// MODAL_TOKEN_SECRET (and ~/.modal.toml) as it does for Modal itself. V1 sandboxes, as stepop
// creates them (0.11.1 makes V2 the default for sandboxes without a GPU: MODAL_SANDBOX_V2=false
// unless set). Prints one JSON line.
//   node modal_client.js create JSON   app (createIfMissing), image fromRegistry, sandbox create
//       JSON: {"app", "image", "command", "env", "tags", "name", "timeoutMs", "memoryMiB",
//              "memoryLimitMiB", "cpu", "gpu", "workdir", "wait": true (also wait and read its
//              stdout and stderr)} -> {"sandboxId", "ms" (create, from the client's start)[,
//              "exitCode", "stdout", "stderr"]}
//   node modal_client.js fromid ID     Sandbox.fromId, then its tags and poll() -> {"sandboxId",
//                                      "tags", "returnCode"}
//   node modal_client.js terminate ID  fromId, terminate and wait -> {"exitCode"}
//   node modal_client.js wait ID       fromId and wait -> {"exitCode"}
//   node modal_client.js poll ID       fromId, poll() every 0.5 s until it ends -> {"exitCode", "polls"}
//   node modal_client.js logs ID       fromId, stdout and stderr to their end -> {"stdout", "stderr"}
//   node modal_client.js bench JSON N  N sandboxes created one after the other by one client
//                                      (JSON as for create) -> {"ms": [each create's time]}
//   node modal_client.js raw METHOD JSON [HEX]   one call by grpc-js alone: the request from JSON
//       by the SDK's own codec (modal_proto.js), HEX appended to its bytes (fields the message
//       lacks), the SDK's headers and an auth token from AuthTokenGet (none with
//       MODAL_RAW_NO_AUTH=1) -> {"code", "details", "messages": [the answers, as toJSON gives them]}
'use strict';
const path = require('path');

if (process.env.MODAL_SANDBOX_V2 === undefined) process.env.MODAL_SANDBOX_V2 = 'false';
const { ModalClient } = require(path.join(__dirname, 'node_modules', 'modal'));

async function create(client, o) {
  const app = await client.apps.fromName(o.app || 'stepop-sdk', { createIfMissing: true });
  const image = client.images.fromRegistry(o.image);
  const params = {};
  for (const k of ['command', 'env', 'tags', 'name', 'timeoutMs', 'memoryMiB', 'memoryLimitMiB', 'cpu', 'gpu', 'workdir'])
    if (o[k] !== undefined) params[k] = o[k];
  return client.sandboxes.create(app, image, params);
}

// One call as the SDK would make it, by grpc-js alone.
async function raw(name, reqJson, hex) {
  const grpc = require(path.join(__dirname, 'node_modules', '@grpc', 'grpc-js'));
  const { loadModal, method } = require('./modal_proto');
  const modal = loadModal();
  const client = new grpc.Client(new URL(process.env.MODAL_SERVER_URL).host, grpc.credentials.createInsecure());
  const call = (m, req, token) => new Promise((resolve) => {
    const md = new grpc.Metadata();
    md.set('x-modal-client-type', '8');
    md.set('x-modal-client-version', '1.0.0');
    md.set('x-modal-token-id', process.env.MODAL_TOKEN_ID);
    md.set('x-modal-token-secret', process.env.MODAL_TOKEN_SECRET);
    md.set('x-idempotency-key', require('crypto').randomUUID());
    md.set('x-retry-attempt', '0');
    if (token) md.set('x-modal-auth-token', token);
    const out = { code: 0, details: '', messages: [] };
    const ser = (x) => x;
    const de = (b) => m.responseType.toJSON(m.responseType.decode(b));
    const path_ = `/modal.client.ModalClient/${m.name}`;
    if (m.responseStream) {
      const s = client.makeServerStreamRequest(path_, ser, de, req, md);
      s.on('data', (d) => out.messages.push(d));
      s.on('error', (e) => { out.code = e.code; out.details = e.details; });
      s.on('close', () => resolve(out));
    } else {
      client.makeUnaryRequest(path_, ser, de, req, md, (e, d) => {
        if (e) Object.assign(out, { code: e.code, details: e.details });
        else out.messages.push(d);
        resolve(out);
      });
    }
  });
  const enc = (m, j) => Buffer.from(m.requestType.encode(m.requestType.fromJSON(j)).finish());
  let token = '';
  if (process.env.MODAL_RAW_NO_AUTH !== '1') {
    const t = await call(method(modal, 'AuthTokenGet'), enc(method(modal, 'AuthTokenGet'), {}), '');
    if (t.code) return t;
    token = t.messages[0].token;
  }
  const m = method(modal, name);
  const out = await call(m, Buffer.concat([enc(m, JSON.parse(reqJson)), Buffer.from(hex || '', 'hex')]), token);
  client.close();
  return out;
}

async function main(argv) {
  const [cmd, arg, n] = argv;
  if (cmd === 'raw') return raw(arg, n, argv[3]);
  const start = Date.now();
  const client = new ModalClient();
  try {
    if (cmd === 'create') {
      const o = JSON.parse(arg);
      const sb = await create(client, o);
      const out = { sandboxId: sb.sandboxId, ms: Date.now() - start };
      if (o.wait) {
        const [stdout, stderr] = await Promise.all([sb.stdout.readText(), sb.stderr.readText()]);
        out.exitCode = await sb.wait();
        Object.assign(out, { stdout, stderr });
      }
      return out;
    }
    if (cmd === 'bench') {
      const o = JSON.parse(arg);
      const ms = [];
      for (let i = 0; i < Number(n); i++) {
        const t = Date.now();
        const sb = await create(client, o);
        ms.push(Date.now() - t);
        await sb.terminate();
      }
      return { ms };
    }
    const sb = await client.sandboxes.fromId(arg);
    if (cmd === 'fromid') return { sandboxId: sb.sandboxId, tags: await sb.getTags(), returnCode: await sb.poll() };
    if (cmd === 'terminate') { await sb.terminate(); return { exitCode: await sb.wait() }; }
    if (cmd === 'wait') return { exitCode: await sb.wait() };
    if (cmd === 'poll') {
      let code = null, polls = 0;
      while (code === null) { await new Promise((r) => setTimeout(r, 500)); code = await sb.poll(); polls += 1; }
      return { exitCode: code, polls };
    }
    if (cmd === 'logs') {
      const [stdout, stderr] = await Promise.all([sb.stdout.readText(), sb.stderr.readText()]);
      return { stdout, stderr };
    }
    throw new Error(`unknown command ${cmd}`);
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then((out) => {
  console.log(JSON.stringify(out));
  process.exit(0);
}, (e) => {
  console.error(`modal_client: ${e.constructor.name}: ${e.message}`);
  process.exit(1);
});
