#!/usr/bin/env node
// A Modal API fake for the tests: the control plane's gRPC service (modal.client.ModalClient) over
// cleartext HTTP/2 on 127.0.0.1, whose messages are encoded and decoded by the npm `modal` SDK's
// own generated codecs (0.11.1: ts-proto output bundled in dist/index.cjs, exposed by
// modal_proto.js without touching the package), so that every request a client sends is read by
// Modal's code.
//
// Every call is checked as follows, answered in gRPC status codes:
// - x-modal-token-id and x-modal-token-secret must be the configured ones (UNAUTHENTICATED);
//   every call but AuthTokenGet must carry an x-modal-auth-token this fake issued (a JWT with
//   exp, HMAC-signed here) that has not expired (UNAUTHENTICATED).
// - the request bytes must decode with Modal's codec with nothing skipped: a field number the
//   message does not define, or a known field with another wire type, is INVALID_ARGUMENT naming
//   the field (Modal's servers would ignore unknown fields; this fake is strict on purpose).
// - the call is logged (method, status, idempotency key, retry attempt, client type and version,
//   the metadata names, the request as Modal's toJSON gives it, with secret values left out).
//
// Implemented (V1 sandboxes, as the SDK calls them): AuthTokenGet, ClientHello, AppGetOrCreate,
// EnvironmentGetOrCreate, SecretGetOrCreate, ImageGetOrCreate, ImageJoinStreaming (server
// streaming), ImageFromId, SandboxCreate, SandboxGetTaskId, SandboxWait, SandboxTerminate,
// SandboxGetLogs (server streaming), SandboxTagsGet, SandboxTagsSet, SandboxList,
// SandboxGetFromName. Any other method of the definition answers UNIMPLEMENTED.
//
// Images: ImageGetOrCreate takes dockerfile commands `FROM <ref>` only; the "build" is an image
// lookup in the local Podman storage (no registry here): found is SUCCESS, with build logs on
// ImageJoinStreaming, missing is FAILURE. With imageRegistryConfig the referenced secret must hold
// REGISTRY_USERNAME and REGISTRY_PASSWORD (the keys Modal documents for private registries).
//
// Sandboxes run in Podman (storage under --podman-dir, as tests/lib.sh's podman_cli; the
// containers.conf that start_podman exports): the image found at build time, the entrypoint args
// as the command (none: `sleep <timeout>`, the sandbox idles until its timeout), the secrets' and
// environmentVariables' environment plus MODAL_SANDBOX_ID, MODAL_TASK_ID and --container-env,
// host network (the tests' servers are on loopback), workdir, a memory limit from
// resources.memoryMbMax. GPUs, CPU, regions and cloud are recorded, not applied. A sandbox gets a
// task --start-delay seconds after SandboxCreate. Its end maps onto GenericResult:
//   exit 0 -> SUCCESS; exit N -> FAILURE with exitcode N; SandboxTerminate -> TERMINATED (SIGTERM,
//   SIGKILL after --stop-grace); timeoutSecs passed -> TIMEOUT (the same stop); a command that
//   cannot be run -> FAILURE with the runtime's exit code (126/127) and its words on stderr.
// The wording of `exception` for these and for the scripted statuses below is this fake's own,
// not taken from Modal. Container stdout and stderr are the sandbox's logs (file descriptors 1 and
// 2), entry ids "<ms>-<n>" in order; SandboxGetLogs resumes after last_entry_id and ends with eof
// once the sandbox has finished and its logs are all sent; timeout 0 answers what is there now.
//
// Control endpoints (plain HTTP on the second port, under /_/):
// - POST /_/script: a JSON rule or a list of them.
//   {"method": NAME, "code": "UNAVAILABLE", "times": N, "message": TEXT, "after": false}: the next
//     N calls of NAME (or of every method with "*") answer that gRPC status; with "after": true
//     the call is carried out first and its answer lost (a retry with the same idempotency key
//     then gets the first call's answer, as for every create call).
//   {"sandbox": NAME or "*", "result": STATUS, "after": SECONDS, "exception": TEXT, "times": N}:
//     the next N (1) sandboxes created whose name matches end with STATUS (INIT_FAILURE: never
//     started; INTERNAL_FAILURE, MEMORY_MANAGER_EVICTION, TIMEOUT: SIGKILL SECONDS after start).
//   {"sandbox": NAME or "*", "capacity": true, "times": N}: those never get a task.
//   {"build": "FAILURE", "exception": TEXT, "times": N}: the next N image builds fail.
//   {"token_lifetime": SECONDS}: the lifetime of the auth tokens issued from now on (--token-lifetime).
// - GET /_/log: the calls seen. GET /_/sandboxes: the sandboxes (id, name, tags, state, task,
//   result, container, image, environment names, definition). GET /_/images, GET /_/secrets (keys
//   only), GET /_/apps.
// - POST /_/reset: forgets the log and the rules.
// On SIGTERM it removes the containers it started and exits.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const http = require('http');
const { execFile, execFileSync, spawn } = require('child_process');
const grpc = require(path.join(__dirname, 'node_modules', '@grpc', 'grpc-js'));
const { loadModal } = require('./modal_proto');

// ---- Modal's codecs ----------------------------------------------------------------------------
const modal = loadModal();
const DEF = modal.ModalClientDefinition;
const ST = (name) => modal.genericResult_GenericStatusFromJSON('GENERIC_STATUS_' + name);
const stName = (n) => modal.genericResult_GenericStatusToJSON(n).replace(/^GENERIC_STATUS_/, '');
const FD = { STDOUT: 1, STDERR: 2, INFO: 3 };
const CREATION = { UNSPECIFIED: 0, CREATE_IF_MISSING: 1, CREATE_FAIL_IF_EXISTS: 2, CREATE_OVERWRITE_IF_EXISTS: 3,
                   ANONYMOUS_OWNED_BY_APP: 4, EPHEMERAL: 5 };

// A reader that records what Modal's decoders skip: generated decode() calls skip() exactly for
// a field the message does not define or a known field with another wire type, right after
// reading its tag.
class StrictReader extends modal.BinaryReader {
  constructor(buf) {
    super(buf);
    this.skipped = [];
    const read = this.uint32;
    this.uint32 = function () { this.lastVarint = read.call(this); return this.lastVarint; };
  }
  skip(wireType, fieldNo) {
    if (fieldNo === undefined) this.skipped.push(`field ${this.lastVarint >>> 3} (wire type ${wireType})`);
    return super.skip(wireType, fieldNo);
  }
}

// ---- arguments -----------------------------------------------------------------------------------
const args = { containerLabel: [], containerEnv: [], environment: [], stopGrace: 10, startDelay: 0.2,
               tokenLifetime: 1200, imageBuilderVersion: '2024.10', tokenId: '', tokenSecret: '' };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
  const v = process.argv[++i];
  if (Array.isArray(args[k])) args[k].push(v);
  else if (typeof args[k] === 'number') args[k] = Number(v);
  else args[k] = v;
}
for (const k of ['portFile', 'podmanDir', 'jobsDir', 'tokenId', 'tokenSecret'])
  if (!args[k]) { console.error(`modal_fake: --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required`); process.exit(2); }
args.podmanDir = path.resolve(args.podmanDir);
args.jobsDir = path.resolve(args.jobsDir);
fs.mkdirSync(args.jobsDir, { recursive: true });

// ---- state ---------------------------------------------------------------------------------------
let calls = [];
let faults = [];       // {method, code, left, message, after}
let sbRules = [];      // {sandbox, result|capacity, after, exception, left}
let buildRules = [];   // {exception, left}
const apps = new Map();          // id -> {id, name, env}
const environments = new Map();  // name -> {id, name}
const secrets = new Map();       // id -> {id, name, env, env_dict, ephemeral}
const images = new Map();        // id -> image
const sandboxes = new Map();     // id -> sandbox
const replies = new Map();       // method|idempotency key -> answer of a create call
const containers = new Set();
const signingKey = crypto.randomBytes(32);
let entrySeq = 0;
environments.set('main', { id: newId('en'), name: 'main' });
for (const e of args.environment) environments.set(e, { id: newId('en'), name: e });

function newId(prefix) {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  let s = '';
  for (const b of crypto.randomBytes(22)) s += alphabet[b % alphabet.length];
  return `${prefix}-${s}`;
}
const now = () => Date.now() / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function nextEntryId() { entrySeq += 1; return `${Date.now()}-${entrySeq}`; }
function entryAfter(id, last) { // entry ids "<ms>-<n>": is id after last?
  if (!last) return true;
  const a = id.split('-').map(Number), b = last.split('-').map(Number);
  return a[0] > b[0] || (a[0] === b[0] && (a[1] || 0) > (b[1] || 0));
}

class ApiError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
const S = grpc.status;
const invalid = (m) => new ApiError(S.INVALID_ARGUMENT, m);
const notFound = (m) => new ApiError(S.NOT_FOUND, m);

// Something that changes (a sandbox, an image): waiters wake on change().
class Watched {
  constructor() { this.waiters = new Set(); }
  changed() { const w = [...this.waiters]; this.waiters.clear(); for (const f of w) f(); }
  // Resolves at the next change or after ms.
  next(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.waiters.delete(done); resolve(); }, Math.max(0, ms));
      const done = () => { clearTimeout(t); resolve(); };
      this.waiters.add(done);
    });
  }
}
// Waits until pred() holds or `secs` pass (or the call is cancelled).
async function waitUntil(obj, pred, secs, call) {
  const end = Date.now() + secs * 1000;
  while (!pred() && Date.now() < end && !(call && call.cancelled)) await obj.next(Math.min(1000, end - Date.now()));
  return pred();
}

// ---- Podman --------------------------------------------------------------------------------------
function podmanArgs(a) {
  const d = args.podmanDir;
  return ['--root', d + '/root', '--runroot', d + '/run', '--tmpdir', d + '/tmp', ...a];
}
// Runs podman (in the jobs directory: conmon writes a file "oom" into its working directory).
function podman(...a) {
  return new Promise((resolve) => {
    execFile('podman', podmanArgs(a), { cwd: args.jobsDir, maxBuffer: 16 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

// ---- auth ---------------------------------------------------------------------------------------
const b64url = (b) => Buffer.from(b).toString('base64url');
function issueToken() {
  const iat = Math.floor(now());
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub: args.tokenId, iat, exp: iat + args.tokenLifetime, jti: newId('tk') }));
  const sig = crypto.createHmac('sha256', signingKey).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
function checkToken(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return 'missing';
  const sig = crypto.createHmac('sha256', signingKey).update(`${parts[0]}.${parts[1]}`).digest('base64url');
  if (sig !== parts[2]) return 'forged';
  try {
    if (JSON.parse(Buffer.from(parts[1], 'base64url')).exp <= now()) return 'expired';
  } catch (e) {
    return 'forged';
  }
  return 'ok';
}
function authenticate(md, method, entry) {
  const id = md.get('x-modal-token-id')[0], secret = md.get('x-modal-token-secret')[0];
  if (!id || !secret) { entry.auth = 'no token'; throw new ApiError(S.UNAUTHENTICATED, 'Token missing. Could not authenticate client.'); }
  if (id !== args.tokenId || secret !== args.tokenSecret) {
    entry.auth = 'bad token';
    throw new ApiError(S.UNAUTHENTICATED, 'Token ID or secret is invalid.');
  }
  if (method === 'AuthTokenGet') { entry.auth = 'token'; return; }
  entry.auth = checkToken(md.get('x-modal-auth-token')[0]);
  if (entry.auth !== 'ok') throw new ApiError(S.UNAUTHENTICATED, `x-modal-auth-token is ${entry.auth}`);
}

// ---- logging -------------------------------------------------------------------------------------
// The request as Modal's toJSON gives it, without secret values.
const keysOnly = (o) => Object.fromEntries(Object.keys(o).map((k) => [k, '<set>']));
function shown(method, type, req) {
  const j = type.toJSON(req);
  if (method === 'SecretGetOrCreate' && j.envDict) j.envDict = keysOnly(j.envDict);
  const ev = j.definition && j.definition.environmentVariables;
  if (ev && ev.data) ev.data = keysOnly(ev.data);
  return j;
}
function callEntry(method, md) {
  const one = (k) => md.get(k)[0];
  const entry = { method, time: now(), idempotency_key: one('x-idempotency-key') || null,
                  retry_attempt: one('x-retry-attempt') === undefined ? null : Number(one('x-retry-attempt')),
                  client_type: one('x-modal-client-type') || null, client_version: one('x-modal-client-version') || null,
                  libmodal_version: one('x-modal-libmodal-version') || null, headers: Object.keys(md.getMap()).sort() };
  calls.push(entry);
  return entry;
}
function takeFault(method) {
  const f = faults.find((r) => r.left > 0 && (r.method === '*' || r.method === method));
  if (f) f.left -= 1;
  return f;
}
function faultError(f) {
  return new ApiError(S[f.code] !== undefined ? S[f.code] : S.UNAVAILABLE, f.message || `scripted ${f.code}`);
}

// ---- the service -----------------------------------------------------------------------------------
const REPLAYED = ['AppGetOrCreate', 'EnvironmentGetOrCreate', 'SecretGetOrCreate', 'ImageGetOrCreate', 'SandboxCreate',
                  'SandboxTerminate'];

function decodeRequest(m, buf, entry) {
  const r = new StrictReader(buf);
  let req;
  try {
    req = m.requestType.decode(r);
  } catch (e) {
    throw invalid(`the request does not decode as ${m.name}Request: ${e.message}`);
  }
  entry.request = shown(m.name, m.requestType, req);
  if (r.skipped.length) {
    entry.unknown_fields = r.skipped;
    throw invalid(`the request has fields Modal's ${m.name} request does not define: ${r.skipped.join(', ')}`);
  }
  return req;
}

function unaryHandler(m, impl) {
  return async (call, callback) => {
    const entry = callEntry(m.name, call.metadata);
    const answer = (err, res) => {
      entry.code = err ? Object.keys(S).find((k) => S[k] === err.code) : 'OK';
      if (err) entry.message = err.message;
      if (err) callback({ code: err.code, details: err.message });
      else callback(null, res);
    };
    try {
      authenticate(call.metadata, m.name, entry);
      const req = decodeRequest(m, call.request, entry);
      const key = entry.idempotency_key && REPLAYED.includes(m.name) ? `${m.name}|${entry.idempotency_key}` : null;
      const fault = takeFault(m.name);
      if (fault && !fault.after) { entry.fault = fault.code; throw faultError(fault); }
      let res;
      if (key && replies.has(key)) {
        res = replies.get(key);
        entry.replayed = true;
      } else {
        if (!impl) throw new ApiError(S.UNIMPLEMENTED, `the Modal fake does not implement ${m.name}`);
        res = await impl(req, call, entry);
        if (key) replies.set(key, res);
      }
      if (fault) { entry.fault = fault.code + ' after'; throw faultError(fault); }
      answer(null, res);
    } catch (e) {
      if (!(e instanceof ApiError)) console.error(`modal_fake: ${m.name}: ${e.stack}`);
      answer(e instanceof ApiError ? e : new ApiError(S.INTERNAL, `modal_fake: ${e.message}`));
    }
  };
}

function streamHandler(m, impl) {
  return async (call) => {
    const entry = callEntry(m.name, call.metadata);
    call.on('cancelled', () => { call.cancelled = true; });
    try {
      authenticate(call.metadata, m.name, entry);
      const req = decodeRequest(m, call.request, entry);
      const fault = takeFault(m.name);
      if (fault) { entry.fault = fault.code; throw faultError(fault); }
      if (!impl) throw new ApiError(S.UNIMPLEMENTED, `the Modal fake does not implement ${m.name}`);
      entry.messages = 0;
      await impl(req, call, (msg) => { entry.messages += 1; if (!call.cancelled) call.write(msg); }, entry);
      entry.code = 'OK';
      call.end();
    } catch (e) {
      if (!(e instanceof ApiError)) console.error(`modal_fake: ${m.name}: ${e.stack}`);
      const err = e instanceof ApiError ? e : new ApiError(S.INTERNAL, `modal_fake: ${e.message}`);
      entry.code = Object.keys(S).find((k) => S[k] === err.code);
      entry.message = err.message;
      call.emit('error', { code: err.code, details: err.message });
    }
  };
}

function envName(name) {
  const n = name || 'main';
  if (!environments.has(n)) throw notFound(`Environment '${n}' not found`);
  return n;
}

const impls = {
  async ClientHello() {
    return { imageBuilderVersion: args.imageBuilderVersion };
  },
  async AuthTokenGet() {
    return { token: issueToken() };
  },
  async EnvironmentGetOrCreate(req) {
    const n = req.deploymentName || 'main';
    if (!environments.has(n)) {
      if (req.objectCreationType !== CREATION.CREATE_IF_MISSING) throw notFound(`Environment '${n}' not found`);
      environments.set(n, { id: newId('en'), name: n });
    }
    const e = environments.get(n);
    return { environmentId: e.id, metadata: { name: e.name, settings: { imageBuilderVersion: args.imageBuilderVersion,
                                                                         webhookSuffix: '' } } };
  },
  async AppGetOrCreate(req) {
    if (!req.appName) throw invalid('App name is required');
    if (!modal.isValidObjectName(req.appName)) throw invalid(`Invalid App name: '${req.appName}'`);
    const env = envName(req.environmentName);
    let app = [...apps.values()].find((a) => a.name === req.appName && a.env === env);
    if (!app) {
      if (req.objectCreationType === CREATION.UNSPECIFIED) throw notFound(`App '${req.appName}' not found`);
      app = { id: newId('ap'), name: req.appName, env, created: now() };
      apps.set(app.id, app);
    } else if (req.objectCreationType === CREATION.CREATE_FAIL_IF_EXISTS) {
      throw new ApiError(S.ALREADY_EXISTS, `App '${req.appName}' already exists`);
    }
    return { appId: app.id };
  },
  async SecretGetOrCreate(req) {
    const env = envName(req.environmentName);
    const t = req.objectCreationType;
    let s;
    if (t === CREATION.EPHEMERAL) {
      if (req.deploymentName) throw invalid('An ephemeral Secret has no name');
      s = { id: newId('st'), name: '', env, envDict: { ...req.envDict }, ephemeral: true };
      secrets.set(s.id, s);
    } else {
      if (!req.deploymentName) throw invalid('Secret name is required');
      s = [...secrets.values()].find((x) => x.name === req.deploymentName && x.env === env);
      if (!s && t === CREATION.UNSPECIFIED) throw notFound(`Secret '${req.deploymentName}' not found`);
      if (s && t === CREATION.CREATE_FAIL_IF_EXISTS) throw new ApiError(S.ALREADY_EXISTS, `Secret '${req.deploymentName}' already exists`);
      if (!s || t === CREATION.CREATE_OVERWRITE_IF_EXISTS) {
        s = { id: s ? s.id : newId('st'), name: req.deploymentName, env, envDict: { ...req.envDict }, ephemeral: false };
        secrets.set(s.id, s);
      }
    }
    const missing = req.requiredKeys.filter((k) => !(k in s.envDict));
    if (missing.length) throw new ApiError(S.FAILED_PRECONDITION, `Secret is missing key(s): ${missing.join(', ')}`);
    return { secretId: s.id };
  },
  async ImageGetOrCreate(req) {
    if (!apps.has(req.appId)) throw notFound(`App ${req.appId} not found`);
    const im = req.image;
    if (!im || !im.dockerfileCommands.length) throw invalid('the image has no dockerfile commands');
    const from = /^FROM\s+(\S+)\s*$/.exec(im.dockerfileCommands[0]);
    if (!from || im.dockerfileCommands.length > 1 || im.baseImages.length)
      throw invalid(`the Modal fake builds "FROM <image>" alone, not ${JSON.stringify(im.dockerfileCommands)}`);
    for (const sid of im.secretIds) if (!secrets.has(sid)) throw notFound(`Secret ${sid} not found`);
    const reg = im.imageRegistryConfig;
    if (reg && reg.secretId && !secrets.has(reg.secretId)) throw notFound(`Secret ${reg.secretId} not found`);
    const id = 'im-' + crypto.createHash('sha256').update(JSON.stringify([im.dockerfileCommands, reg || null,
      req.builderVersion])).digest('base64url').replace(/[-_]/g, 'x').slice(0, 22);
    let image = images.get(id);
    if (!image || req.forceBuild || (image.result && image.result.status !== ST('SUCCESS'))) {
      image = Object.assign(new Watched(), { id, from: from[1], ref: null, appId: req.appId, builderVersion: req.builderVersion,
        registry: reg ? { authType: reg.registryAuthType, secretId: reg.secretId } : null, logs: [], result: null,
        builds: ((image && image.builds) || 0) + 1 });
      images.set(id, image);
      build(image);
    }
    return { imageId: id, result: image.result || undefined };
  },
  async ImageJoinStreaming(req, call, send) {
    const image = images.get(req.imageId);
    if (!image) throw notFound(`Image ${req.imageId} not found`);
    let last = req.lastEntryId;
    const end = Date.now() + Math.min(req.timeout > 0 ? req.timeout : 55, 55) * 1000;
    for (;;) {
      const fresh = image.logs.filter((e) => entryAfter(e.entryId, last));
      if (fresh.length) {
        last = fresh[fresh.length - 1].entryId;
        send({ taskLogs: fresh.map((e) => ({ data: e.data, fileDescriptor: e.fd, timestamp: e.time })), entryId: last });
      }
      if (image.result) { send({ result: image.result, eof: true, entryId: last || '' }); return; }
      if (Date.now() >= end || call.cancelled) return;
      await image.next(end - Date.now());
    }
  },
  async ImageFromId(req) {
    const image = images.get(req.imageId);
    if (!image || !image.result || image.result.status !== ST('SUCCESS')) throw notFound(`Could not find image with ID ${req.imageId}`);
    return { imageId: image.id };
  },
  async SandboxCreate(req) {
    const app = apps.get(req.appId);
    if (!app) throw notFound(`App ${req.appId} not found`);
    const env = envName(req.environmentName || app.env);
    const d = req.definition;
    if (!d) throw invalid('the sandbox definition is missing');
    const image = images.get(d.imageId);
    if (!image) throw notFound(`Image ${d.imageId} not found`);
    if (!image.result || image.result.status !== ST('SUCCESS')) throw new ApiError(S.FAILED_PRECONDITION, `Image ${d.imageId} is not built`);
    for (const sid of d.secretIds) if (!secrets.has(sid)) throw notFound(`Secret ${sid} not found`);
    if (!(d.timeoutSecs > 0) || d.timeoutSecs > 86400) throw invalid(`timeout_secs must be between 1 and 86400 (24 h), not ${d.timeoutSecs}`);
    if (d.workdir && !d.workdir.startsWith('/')) throw invalid(`workdir must be an absolute path, got: ${d.workdir}`);
    if (d.name !== undefined && d.name !== '') {
      if (!modal.isValidObjectName(d.name)) throw invalid(`Invalid Sandbox name: '${d.name}'`);
      if ([...sandboxes.values()].some((s) => s.appId === app.id && s.name === d.name && !s.result))
        throw new ApiError(S.ALREADY_EXISTS, `A running Sandbox named '${d.name}' already exists in the App`);
    }
    const gpu = d.resources && d.resources.gpuConfig;
    if (gpu && (gpu.count || gpu.gpuType)) {
      const types = ['T4', 'L4', 'A10', 'A10G', 'A100', 'A100-40GB', 'A100-80GB', 'L40S', 'H100', 'H100!', 'H200', 'B200'];
      if (!types.includes(gpu.gpuType.toUpperCase())) throw invalid(`Unknown GPU type: '${gpu.gpuType}'`);
      if (gpu.count < 1 || gpu.count > 8) throw invalid(`GPU count must be between 1 and 8, not ${gpu.count}`);
    }
    for (const t of req.tags) if (!t.tagName) throw invalid('a tag has no name');
    const sb = Object.assign(new Watched(), {
      id: newId('sb'), appId: app.id, env, name: d.name || '', tags: req.tags.map((t) => ({ tagName: t.tagName, tagValue: t.tagValue })),
      definition: d, image, created: now(), state: 'pending', taskId: null, cid: null, result: null, started: null,
      finished: null, stop: null, logs: [], pumped: Promise.resolve(), rule: takeSandboxRule(d.name || ''),
    });
    sandboxes.set(sb.id, sb);
    life(sb).catch((e) => {
      console.error(`modal_fake: sandbox ${sb.id}: ${e.stack}`);
      finish(sb, { status: ST('INTERNAL_FAILURE'), exception: `modal_fake: ${e.message}` });
    });
    return { sandboxId: sb.id };
  },
  async SandboxGetTaskId(req, call) {
    const sb = getSandbox(req.sandboxId);
    const secs = Math.min(req.timeout === undefined ? 0 : req.timeout, 50);
    await waitUntil(sb, () => sb.taskId || sb.result, secs, call);
    return { taskId: sb.taskId || undefined, taskResult: sb.result || undefined };
  },
  async SandboxWait(req, call) {
    const sb = getSandbox(req.sandboxId);
    await waitUntil(sb, () => sb.result, Math.min(Math.max(req.timeout, 0), 55), call);
    return { result: sb.result || undefined, metadata: { appId: sb.appId, result: sb.result || undefined } };
  },
  async SandboxTerminate(req) {
    const sb = getSandbox(req.sandboxId);
    if (sb.result) return { existingResult: sb.result };
    requestStop(sb, 'terminated');
    return {};
  },
  async SandboxGetLogs(req, call, send) {
    const sb = getSandbox(req.sandboxId);
    const fds = req.fileDescriptor ? [req.fileDescriptor] : [FD.STDOUT, FD.STDERR];
    let last = req.lastEntryId === '0-0' ? '' : req.lastEntryId;
    const end = Date.now() + Math.min(Math.max(req.timeout, 0), 55) * 1000;
    for (;;) {
      const done = sb.logsDone; // read before the entries: no entry comes after it is set
      const fresh = sb.logs.filter((e) => fds.includes(e.fd) && entryAfter(e.entryId, last));
      if (fresh.length) {
        last = fresh[fresh.length - 1].entryId;
        send({ taskId: sb.taskId || '', sandboxId: sb.id, entryId: last,
               items: fresh.map((e) => ({ data: e.data, fileDescriptor: e.fd, timestamp: e.time, taskState: 4 })) });
      }
      if (done) { send({ taskId: sb.taskId || '', sandboxId: sb.id, entryId: last || '', eof: true, items: [] }); return; }
      if (Date.now() >= end || call.cancelled) return;
      await sb.next(end - Date.now());
    }
  },
  async SandboxTagsGet(req) {
    return { tags: getSandbox(req.sandboxId).tags };
  },
  async SandboxTagsSet(req) {
    const sb = getSandbox(req.sandboxId);
    for (const t of req.tags) if (!t.tagName) throw invalid('a tag has no name');
    sb.tags = req.tags.map((t) => ({ tagName: t.tagName, tagValue: t.tagValue }));
    return {};
  },
  async SandboxList(req) {
    const env = req.appId ? null : envName(req.environmentName);
    const list = [...sandboxes.values()].filter((s) => (req.appId ? s.appId === req.appId : s.env === env) &&
      (req.includeFinished || !s.result) && (!req.beforeTimestamp || s.created < req.beforeTimestamp) &&
      req.tags.every((t) => s.tags.some((u) => u.tagName === t.tagName && u.tagValue === t.tagValue)))
      .sort((a, b) => b.created - a.created).slice(0, 100);
    return { sandboxes: list.map(sandboxInfo) };
  },
  async SandboxGetFromName(req) {
    const env = envName(req.environmentName);
    const app = [...apps.values()].find((a) => a.name === req.appName && a.env === env);
    const sb = app && [...sandboxes.values()].find((s) => s.appId === app.id && s.name === req.sandboxName && !s.result);
    if (!sb) throw notFound(`Sandbox with name '${req.sandboxName}' not found in App '${req.appName}'`);
    return { sandboxId: sb.id };
  },
};

function getSandbox(id) {
  const sb = sandboxes.get(id);
  if (!sb) throw notFound(`Sandbox ${id} not found`);
  return sb;
}
function sandboxInfo(s) {
  return { id: s.id, createdAt: s.created, appId: s.appId, tags: s.tags, name: s.name, imageId: s.image.id,
           timeoutSecs: s.definition.timeoutSecs, regions: (s.definition.schedulerPlacement || {}).regions || [],
           taskInfo: s.taskId ? { id: s.taskId, startedAt: s.started || 0, finishedAt: s.finished || 0,
                                  result: s.result || undefined, sandboxId: s.id } : undefined,
           metadata: { appId: s.appId, result: s.result || undefined } };
}
function takeSandboxRule(name) {
  const r = sbRules.find((x) => x.left > 0 && (x.sandbox === '*' || x.sandbox === name));
  if (r) r.left -= 1;
  return r ? { ...r } : null;
}

// ---- image builds ------------------------------------------------------------------------------
function imageLog(image, data, fd = FD.STDOUT) {
  image.logs.push({ entryId: nextEntryId(), data, fd, time: now() });
  image.changed();
}
async function build(image) {
  const done = (status, exception) => {
    image.result = { status: ST(status), exception: exception || '' };
    image.changed();
  };
  imageLog(image, `Building image ${image.id}\n`);
  imageLog(image, `\n=> Step 0: FROM ${image.from}\n`);
  const rule = buildRules.find((r) => r.left > 0);
  if (rule) {
    rule.left -= 1;
    imageLog(image, `${rule.exception}\n`, FD.STDERR);
    return done('FAILURE', rule.exception);
  }
  if (image.registry && image.registry.secretId) {
    const env = secrets.get(image.registry.secretId).envDict;
    const lacking = ['REGISTRY_USERNAME', 'REGISTRY_PASSWORD'].filter((k) => !env[k]);
    if (lacking.length) {
      const m = `the registry secret lacks ${lacking.join(' and ')}`;
      imageLog(image, m + '\n', FD.STDERR);
      return done('FAILURE', m);
    }
    imageLog(image, `Using registry credentials of user ${env.REGISTRY_USERNAME.length ? '<set>' : ''}\n`);
  }
  const r = await podman('image', 'inspect', '--format', '{{.Id}}', image.from);
  if (r.code !== 0) {
    const m = `failed to pull image ${image.from}: not in the local Podman storage (the Modal fake has no registry)`;
    imageLog(image, m + '\n', FD.STDERR);
    return done('FAILURE', m);
  }
  image.ref = r.stdout.trim();
  imageLog(image, `Copying ${image.from} (${image.ref.slice(0, 12)}) from local storage\n`);
  imageLog(image, 'Built image ' + image.id + '\n');
  done('SUCCESS');
}

// ---- sandboxes ------------------------------------------------------------------------------------
function finish(sb, result) {
  if (sb.result) return;
  sb.result = { status: result.status, exception: result.exception || '', exitcode: result.exitcode || 0 };
  sb.finished = now();
  sb.state = 'finished';
  sb.logsDone = true;
  sb.changed();
}
function sbLog(sb, data, fd) {
  sb.logs.push({ entryId: nextEntryId(), data, fd, time: now() });
  sb.changed();
}
// Stops the container for REASON (terminated, timeout, or a scripted status: SIGKILL at once).
function requestStop(sb, reason) {
  if (sb.stop) return;
  sb.stop = reason;
  sb.changed();
  if (!sb.cid) return;
  if (reason === 'terminated' || reason === 'timeout') podman('stop', '-t', String(args.stopGrace), sb.cid);
  else podman('kill', '-s', 'KILL', sb.cid);
}
function containerEnv(sb) {
  const env = {};
  for (const sid of sb.definition.secretIds) Object.assign(env, secrets.get(sid).envDict);
  const ev = sb.definition.environmentVariables;
  if (ev && ev.data) Object.assign(env, ev.data);
  for (const kv of args.containerEnv) { const i = kv.indexOf('='); env[kv.slice(0, i)] = kv.slice(i + 1); }
  env.MODAL_SANDBOX_ID = sb.id;
  env.MODAL_TASK_ID = sb.taskId;
  env.MODAL_ENVIRONMENT = sb.env;
  return env;
}
async function life(sb) {
  await waitUntil(sb, () => sb.stop, args.startDelay);
  const rule = sb.rule || {};
  if (rule.capacity) await waitUntil(sb, () => sb.stop, 1e9);
  if (sb.stop) return finish(sb, { status: ST('TERMINATED'), exception: 'Sandbox terminated before it was scheduled' });
  sb.taskId = newId('ta');
  sb.state = 'starting';
  sb.changed();
  if (rule.result === 'INIT_FAILURE') {
    await sleep((rule.after || 0) * 1000);
    return finish(sb, { status: ST('INIT_FAILURE'), exception: rule.exception || 'Sandbox failed to initialize' });
  }
  const d = sb.definition;
  const a = ['run', '-d', '--name', `modal-fake-${sb.id}`, '--pull', 'never', '--log-driver', 'k8s-file',
             '--network', 'host', '--hostname', sb.taskId.toLowerCase(), '--label', `modal-fake.sandbox=${sb.id}`];
  for (const l of args.containerLabel) a.push('--label', l);
  const mem = d.resources && d.resources.memoryMbMax;
  if (mem) a.push('--memory', `${mem}m`, '--memory-swap', `${mem}m`);
  if (d.workdir) a.push('--workdir', d.workdir);
  for (const [k, v] of Object.entries(containerEnv(sb)).sort()) a.push('--env', `${k}=${v}`);
  const argv = d.entrypointArgs.length ? d.entrypointArgs : ['sleep', String(Math.ceil(d.timeoutSecs))];
  a.push('--entrypoint', JSON.stringify([argv[0]]), sb.image.ref, ...argv.slice(1));
  sb.envKeys = Object.keys(containerEnv(sb)).sort();
  const r = await podman(...a);
  const cid = r.code === 0 ? r.stdout.trim().split('\n').pop() : null;
  const name = `modal-fake-${sb.id}`;
  containers.add(name);
  if (!cid) {
    // The command could not be run (an image without it): the runtime's words on stderr, its
    // exit code (126: not executable, 127: not found) as the sandbox's.
    const st = await podman('inspect', '--format', '{{.State.ExitCode}}', name);
    const code = Number(st.stdout.trim()) || 127;
    sbLog(sb, r.stderr.trim() + '\n', FD.STDERR);
    return finish(sb, { status: ST('FAILURE'), exitcode: code });
  }
  sb.cid = cid;
  sb.started = now();
  sb.state = 'running';
  sb.changed();
  const pump = spawn('podman', podmanArgs(['logs', '-f', cid]), { cwd: args.jobsDir, stdio: ['ignore', 'pipe', 'pipe'] });
  pump.stdout.on('data', (b) => sbLog(sb, b.toString('utf8'), FD.STDOUT));
  pump.stderr.on('data', (b) => sbLog(sb, b.toString('utf8'), FD.STDERR));
  let pumpDone = false;
  const pumped = new Promise((resolve) => pump.on('close', () => { pumpDone = true; resolve(); }));
  const early = sb.stop; // a stop asked for while the container was being started
  if (early) { sb.stop = null; requestStop(sb, early); }
  const timers = [setTimeout(() => requestStop(sb, 'timeout'), d.timeoutSecs * 1000)];
  if (rule.result) timers.push(setTimeout(() => requestStop(sb, rule.result), (rule.after || 0) * 1000));
  await podman('wait', cid);
  for (const t of timers) clearTimeout(t);
  const ins = await podman('inspect', '--format', 'json', cid);
  let state = {};
  try { state = JSON.parse(ins.stdout)[0].State; } catch (e) { state = { ExitCode: 137 }; }
  const code = Number(state.ExitCode);
  // The log reader ends at the container's end; a little grace for the last lines.
  await Promise.race([pumped, sleep(5000)]);
  if (!pumpDone) pump.kill();
  const stop = sb.stop;
  if (stop === 'terminated') return finish(sb, { status: ST('TERMINATED'), exitcode: code });
  if (stop === 'timeout') return finish(sb, { status: ST('TIMEOUT'), exitcode: code, exception: `Sandbox timed out after ${d.timeoutSecs} seconds` });
  if (stop === 'MEMORY_MANAGER_EVICTION')
    return finish(sb, { status: ST(stop), exitcode: code, exception: rule.exception || 'Sandbox was evicted by the memory manager: the worker ran out of memory' });
  if (stop === 'INTERNAL_FAILURE') return finish(sb, { status: ST(stop), exitcode: code, exception: rule.exception || 'Internal failure' });
  if (stop === 'TIMEOUT') return finish(sb, { status: ST(stop), exitcode: code, exception: rule.exception || 'Sandbox timed out' });
  if (stop) return finish(sb, { status: ST(stop), exitcode: code, exception: rule.exception || '' });
  sb.oomKilled = !!state.OOMKilled;
  finish(sb, { status: ST(code === 0 ? 'SUCCESS' : 'FAILURE'), exitcode: code });
}

function sandboxSummary(s) {
  return { id: s.id, name: s.name, app_id: s.appId, environment: s.env, tags: s.tags, state: s.state, task_id: s.taskId,
           created: s.created, started: s.started, finished: s.finished, container: s.cid, image_id: s.image.id,
           image: s.image.from, stop: s.stop,
           result: s.result ? { status: stName(s.result.status), exitcode: s.result.exitcode, exception: s.result.exception } : null,
           oom_killed: !!s.oomKilled, env_keys: s.envKeys || [],
           definition: shown('SandboxCreate', DEF.methods.sandboxCreate.requestType, { definition: s.definition }).definition,
           logs: s.logs.length };
}

// ---- servers --------------------------------------------------------------------------------------
const service = {};
const handlers = {};
for (const [key, m] of Object.entries(DEF.methods)) {
  if (m.requestStream) continue; // no client streaming here
  service[key] = {
    path: `/${DEF.fullName}/${m.name}`, requestStream: false, responseStream: m.responseStream, originalName: key,
    requestSerialize: (x) => Buffer.from(m.requestType.encode(m.requestType.fromPartial(x)).finish()),
    requestDeserialize: (b) => b,
    responseSerialize: (x) => Buffer.from(m.responseType.encode(m.responseType.fromPartial(x)).finish()),
    responseDeserialize: (b) => m.responseType.decode(b),
  };
  handlers[key] = m.responseStream ? streamHandler(m, impls[m.name]) : unaryHandler(m, impls[m.name]);
}

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
function control(req, res) {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    try {
      if (req.method === 'GET' && req.url === '/_/log') return json(res, 200, calls);
      if (req.method === 'GET' && req.url === '/_/sandboxes') return json(res, 200, [...sandboxes.values()].map(sandboxSummary));
      if (req.method === 'GET' && req.url === '/_/apps') return json(res, 200, [...apps.values()]);
      if (req.method === 'GET' && req.url === '/_/images')
        return json(res, 200, [...images.values()].map((i) => ({ id: i.id, from: i.from, ref: i.ref, builder_version: i.builderVersion,
          registry: i.registry, builds: i.builds, result: i.result && { status: stName(i.result.status), exception: i.result.exception } })));
      if (req.method === 'GET' && req.url === '/_/secrets')
        return json(res, 200, [...secrets.values()].map((s) => ({ id: s.id, name: s.name, env: s.env, ephemeral: s.ephemeral,
                                                                  keys: Object.keys(s.envDict).sort() })));
      if (req.method === 'POST' && req.url === '/_/reset') { calls = []; faults = []; sbRules = []; buildRules = []; return json(res, 200, {}); }
      if (req.method === 'POST' && req.url === '/_/script') {
        const rules = JSON.parse(body);
        for (const r of Array.isArray(rules) ? rules : [rules]) {
          if (r.method) faults.push({ method: r.method, code: r.code || 'UNAVAILABLE', left: r.times || 1, message: r.message, after: !!r.after });
          else if (r.sandbox) {
            if (r.result && !['INIT_FAILURE', 'INTERNAL_FAILURE', 'MEMORY_MANAGER_EVICTION', 'TIMEOUT', 'TERMINATED'].includes(r.result))
              throw new Error(`unknown result ${r.result}`);
            sbRules.push({ sandbox: r.sandbox, result: r.result, capacity: !!r.capacity, after: r.after || 0, exception: r.exception, left: r.times || 1 });
          } else if (r.build) buildRules.push({ exception: r.exception || 'scripted build failure', left: r.times || 1 });
          else throw new Error(`a rule needs "method", "sandbox", "build" or "token_lifetime": ${JSON.stringify(r)}`);
        }
        return json(res, 200, { faults: faults.length, sandbox_rules: sbRules.length, build_rules: buildRules.length });
      }
      json(res, 404, { error: 'unknown control endpoint' });
    } catch (e) {
      json(res, 400, { error: e.message });
    }
  });
}

function cleanup() {
  for (const name of containers) {
    try { execFileSync('podman', podmanArgs(['rm', '-f', '-t', '0', name]), { cwd: args.jobsDir, stdio: 'ignore' }); } catch (e) { /* gone */ }
  }
  process.exit(0);
}
process.on('SIGTERM', cleanup);
process.on('SIGINT', cleanup);

const server = new grpc.Server({ 'grpc.max_receive_message_length': 100 << 20 });
server.addService(service, handlers);
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) { console.error(`modal_fake: ${err.message}`); process.exit(1); }
  const ctl = http.createServer(control);
  ctl.listen(0, '127.0.0.1', () => {
    const tmp = args.portFile + '.tmp';
    fs.writeFileSync(tmp, `${port} ${ctl.address().port}\n`);
    fs.renameSync(tmp, args.portFile);
    console.error(`modal_fake: gRPC on 127.0.0.1:${port}, control on 127.0.0.1:${ctl.address().port}, npm modal ${modal.version}`);
  });
});
