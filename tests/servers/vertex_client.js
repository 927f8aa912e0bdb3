#!/usr/bin/env node
// Google's own Vertex AI client (npm @google-cloud/aiplatform v1 JobServiceClient) in its REST
// mode (google-gax's fallback: JSON over HTTP/1.1), pointed at a loopback endpoint over plain
// http, for the tests' cross-checks and the bench.
//
// Usage: vertex_client.js HOST:PORT CMD ARGS...   (the bearer token in $VERTEX_TOKEN)
//   create PARENT FILE   FILE holds a CustomJob as JSON (camelCase, as the REST API takes it)
//   get NAME | cancel NAME | delete NAME | list PARENT [FILTER]
// Prints the answer as JSON on stdout; on an error prints "error CODE: MESSAGE" on stderr and
// exits 1. With TIMING=1 it also prints on stderr the milliseconds the call took after the
// client was loaded ("call_ms N") and since the process started ("process_ms N").
'use strict';
const fs = require('fs');
const path = require('path');
const modules = path.join(__dirname, 'node_modules');
const {v1} = require(path.join(modules, '@google-cloud/aiplatform'));
const {OAuth2Client} = require(path.join(modules, 'google-auth-library'));

// The REST JSON form writes a google.protobuf.Duration as "600s"; the client's protobuf.js
// objects take {seconds, nanos}.
const DURATIONS = new Set(['timeout', 'maxWaitDuration']);
function durations(v) {
  if (Array.isArray(v)) return v.map(durations);
  if (v === null || typeof v !== 'object') return v;
  const out = {};
  for (const [k, x] of Object.entries(v)) {
    const d = DURATIONS.has(k) && typeof x === 'string' && /^(\d+)(?:\.(\d{1,9}))?s$/.exec(x);
    out[k] = d ? {seconds: d[1], nanos: Number((d[2] || '').padEnd(9, '0'))} : durations(x);
  }
  return out;
}

async function main() {
  const [endpoint, cmd, ...rest] = process.argv.slice(2);
  const m = /^(.*):(\d+)$/.exec(endpoint || '');
  if (!m || !cmd) {
    console.error('usage: vertex_client.js HOST:PORT create|get|cancel|delete|list ARGS...');
    process.exit(2);
  }
  const token = process.env.VERTEX_TOKEN || '';
  // An OAuth2 client holding a token already: google-gax asks it for the Authorization header.
  const auth = new OAuth2Client();
  auth.setCredentials({access_token: token, expiry_date: Date.now() + 3600e3});
  const client = new v1.JobServiceClient({
    apiEndpoint: m[1],
    port: Number(m[2]),
    protocol: 'http', // google-gax's fallback takes the scheme from here (https by default)
    fallback: true,
    authClient: auth,
  });
  const t0 = process.hrtime.bigint();
  let out;
  switch (cmd) {
    case 'create': {
      const customJob = durations(JSON.parse(fs.readFileSync(rest[1], 'utf8')));
      [out] = await client.createCustomJob({parent: rest[0], customJob});
      break;
    }
    case 'get':
      [out] = await client.getCustomJob({name: rest[0]});
      break;
    case 'cancel':
      [out] = await client.cancelCustomJob({name: rest[0]});
      break;
    case 'delete': {
      const [op] = await client.deleteCustomJob({name: rest[0]});
      out = {name: op.name, done: op.done};
      break;
    }
    case 'list':
      [out] = await client.listCustomJobs({parent: rest[0], filter: rest[1] || ''}, {autoPaginate: true});
      break;
    default:
      console.error(`unknown command ${cmd}`);
      process.exit(2);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(JSON.stringify(out, (k, v) => (typeof v === 'bigint' ? String(v) : v)));
  if (process.env.TIMING === '1') {
    console.error(`call_ms ${ms.toFixed(1)}`);
    console.error(`process_ms ${(performance.now()).toFixed(1)}`);
  }
  await client.close();
}

main().catch((e) => {
  console.error(`error ${e.code}: ${e.message}`);
  process.exit(1);
});
