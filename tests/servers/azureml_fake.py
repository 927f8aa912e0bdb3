#!/usr/bin/env python3
"""An Azure Machine Learning (ARM) fake that runs command jobs' containers with Podman, for the tests.

Request bodies are checked with the serializer mappers of npm @azure/arm-machinelearning (the
AutoRest models of one api-version, exported to JSON by tests/servers/azureml_mappers.js and
cached under build/): a walker refuses unknown properties and read-only ones, checks the
polymorphic discriminators (jobType, jobLimitsType), required properties, types (String, Number,
Boolean, Dictionary, Sequence, TimeSpan as ISO 8601, Enum) and constraints (Pattern, MinLength,
MaxLength ...). Every answer this fake builds is walked too (read-only properties allowed there);
a mismatch is a bug here and answers 500. Only the mappers' api-version is served.

Identity: every ARM call needs a bearer token that tests/servers/azure_auth_fake.py (the Entra
fake, --token-verify URL) issued: its signature and expiry are checked there (GET /_/whoami), and
here its audience (https://management.azure.com: a storage token is refused), its tenant
(--tenant) and, with --client-id, its appid. Answers are cached for 30 s per token.

Resources, under /subscriptions/<--subscription>/resourceGroups/<--resource-group>/providers/
Microsoft.MachineLearningServices/workspaces/<--workspace>:
- environments/<name>/versions/<version>: GET, PUT (EnvironmentVersion).
- jobs/<name>: GET, PUT (JobBase; a CommandJob runs, other kinds are refused). A name in use
  answers 409. environmentId must name an environment version of this workspace; computeId a
  compute of --computes (any name when none is given) of this workspace.
- jobs: GET (Jobs - List, JobBaseResourceArmPaginatedResult, one page: what `stepop doctor` asks).
- jobs/<name>/cancel: POST, a long-running operation: 202 with Azure-AsyncOperation
  (/_ops/<id>: {"status": "InProgress" | "Succeeded"}) and Location (/_ops/<id>/result: 202,
  then 200 when done).
Statuses: NotStarted -> Queued -> Starting -> Running -> Finalizing -> Completed | Failed;
cancel: CancelRequested (SIGTERM, SIGKILL after --stop-grace) -> Canceled. limits.timeout
passed: stopped, Failed with code JobTimeout. A Failed job carries properties.error {code,
message} -- an extension: the 2022-10-01 model has no such property (the walker allows it in
answers only); its words are this fake's own: "User process exited with exit code N" (the
command exits 127 when the image has no stepop), "out of memory (OOMKilled)" for a memory kill,
"image not found" when the environment's image is not in Podman's storage.

A job runs `podman run --entrypoint /bin/sh IMAGE -c COMMAND` with environmentVariables plus
AZUREML_RUN_ID and --container-env, on the host network, with a memory limit from
--compute-memory NAME=BYTES (the compute's name or the instanceType).

Control endpoints (no token, under /_/): POST /_/script (a rule or a list:
{"internal_error": N, "op": "GET"|"PUT"|"POST"|None}: the next N ARM calls answer 500;
{"job": NAME or "*", "stay_queued": true}: the job never leaves Queued); GET /_/log (the calls:
{"method", "path", "status", "error", "validation", "auth"}); GET /_/jobs.
On SIGTERM the fake removes the containers it started and exits.
"""
import argparse
import http.server
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

PROVIDER = 'Microsoft.MachineLearningServices'
ARM_RESOURCE = 'https://management.azure.com'
# Properties this fake adds to its answers beyond the model (see above).
ANSWER_EXTENSIONS = {'error'}

args = None
M = None
lock = threading.Lock()
calls = []
rules = []
faults = []
jobs = {}
envs = {}
ops = {}
verified = {}   # token -> (claims or None, when checked)
containers = set()
stopping = threading.Event()


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def user_error(message, status=400):
    return ApiError(status, 'UserError', message)


# ---- the mappers' walker -----------------------------------------------------------------------
DURATION = re.compile(r'^-?P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$')


def model(cls):
    m = M['models'].get(cls)
    if m is None:
        raise KeyError('the mappers have no model %s' % cls)
    return m


def concrete(m, value, path, errs):
    """The subclass a polymorphic value names by its discriminator."""
    t = m['type']
    pd = t.get('polymorphicDiscriminator')
    if not pd:
        return m
    key = pd['serializedName']
    dv = value.get(key)
    if dv is None:
        errs.append('%s.%s: required (the discriminator of %s)' % (path, key, t['className']))
        return None
    for base in (t['className'], t.get('uberParent')):
        c = M['discriminators'].get('%s.%s' % (base, dv))
        if c:
            return model(c)
    if m.get('serializedName') == dv:
        return m
    errs.append('%s.%s: %r is not a kind of %s' % (path, key, dv, t['className']))
    return None


def check_constraints(value, c, path, errs):
    if not c:
        return
    if 'Pattern' in c and isinstance(value, str) and not re.search(c['Pattern']['$regex'], value):
        errs.append('%s: %r does not match the pattern %s' % (path, value, c['Pattern']['$regex']))
    n = len(value) if isinstance(value, (str, list, dict)) else None
    if n is not None:
        if 'MinLength' in c and n < c['MinLength']:
            errs.append('%s: shorter than %d' % (path, c['MinLength']))
        if 'MaxLength' in c and n > c['MaxLength']:
            errs.append('%s: longer than %d' % (path, c['MaxLength']))
        if 'MinItems' in c and n < c['MinItems']:
            errs.append('%s: fewer than %d items' % (path, c['MinItems']))
        if 'MaxItems' in c and n > c['MaxItems']:
            errs.append('%s: more than %d items' % (path, c['MaxItems']))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        for k, bad in (('InclusiveMinimum', lambda a, b: a < b), ('InclusiveMaximum', lambda a, b: a > b),
                       ('ExclusiveMinimum', lambda a, b: a <= b), ('ExclusiveMaximum', lambda a, b: a >= b)):
            if k in c and bad(value, c[k]):
                errs.append('%s: %s breaks %s %s' % (path, value, k, c[k]))


def walk(value, mapper, path, errs, answer):
    """Checks value against a property mapper ({type, constraints, ...})."""
    t = mapper['type']
    name = t['name']
    if value is None:
        if mapper.get('required'):
            errs.append('%s: required, got null' % path)
        return
    check_constraints(value, mapper.get('constraints'), path, errs)
    if mapper.get('isConstant') and value != mapper.get('defaultValue'):
        errs.append('%s: must be %r' % (path, mapper.get('defaultValue')))
    if name in ('String', 'Uuid', 'Base64Url', 'ByteArray'):
        if not isinstance(value, str):
            errs.append('%s: expected a string, got %s' % (path, type(value).__name__))
    elif name == 'TimeSpan':
        if not isinstance(value, str) or not DURATION.match(value):
            errs.append('%s: %r is not an ISO 8601 duration' % (path, value))
    elif name in ('DateTime', 'DateTimeRfc1123', 'Date'):
        if not isinstance(value, str):
            errs.append('%s: expected a date string' % path)
    elif name == 'Number':
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errs.append('%s: expected a number, got %r' % (path, value))
    elif name == 'Boolean':
        if not isinstance(value, bool):
            errs.append('%s: expected true or false, got %r' % (path, value))
    elif name == 'Enum':
        if value not in t.get('allowedValues', []):
            errs.append('%s: %r is not one of %s' % (path, value, t.get('allowedValues')))
    elif name == 'Dictionary':
        if not isinstance(value, dict):
            errs.append('%s: expected an object' % path)
            return
        for k, v in value.items():
            walk(v, t['value'], '%s[%s]' % (path, k), errs, answer)
    elif name == 'Sequence':
        if not isinstance(value, list):
            errs.append('%s: expected a list' % path)
            return
        for i, v in enumerate(value):
            walk(v, t['element'], '%s[%d]' % (path, i), errs, answer)
    elif name == 'Composite':
        walk_model(value, model(t['className']), path, errs, answer)
    # any, Object: anything


def walk_model(value, m, path, errs, answer):
    if not isinstance(value, dict):
        errs.append('%s: expected an object (%s)' % (path, m['type']['className']))
        return
    m = concrete(m, value, path, errs)
    if not m:
        return
    props = m['type'].get('modelProperties', {})
    by_name = {p.get('serializedName', k): p for k, p in props.items()}
    for k, v in value.items():
        p = by_name.get(k)
        where = '%s.%s' % (path, k) if path else k
        if p is None:
            if answer and k in ANSWER_EXTENSIONS:
                continue
            errs.append('%s: not a property of %s' % (where, m['type']['className']))
            continue
        if p.get('readOnly') and not answer:
            errs.append('%s: read-only (set by the service)' % where)
            continue
        walk(v, p, where, errs, answer)
    for k, p in by_name.items():
        if p.get('required') and not p.get('readOnly') and value.get(k) is None:
            errs.append('%s: required' % ('%s.%s' % (path, k) if path else k))


def validate(value, cls, answer=False):
    errs = []
    walk_model(value, model(cls), '', errs, answer)
    return errs


# ---- Podman ------------------------------------------------------------------------------------
def podman_cmd(*a):
    d = args.podman_dir
    return ['podman', '--root', d + '/root', '--runroot', d + '/run', '--tmpdir', d + '/tmp'] + list(a)


def podman(*a, timeout=None):
    # In the jobs directory: conmon writes a file named "oom" into its working directory.
    return subprocess.run(podman_cmd(*a), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout,
                          cwd=args.jobs_dir)


def oom_in_dmesg(cid):
    try:
        out = subprocess.run(['dmesg'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return False
    return any('oom_memcg=' in line and 'libpod-' + cid in line for line in out.splitlines())


def memory_of(name):
    for spec in args.compute_memory:
        k, _, size = spec.partition('=')
        if k == name:
            return size
    return None


# ---- jobs --------------------------------------------------------------------------------------
def ws_path():
    return '/subscriptions/%s/resourceGroups/%s/providers/%s/workspaces/%s' % (
        args.subscription, args.resource_group, PROVIDER, args.workspace)


def system_data(created):
    ts = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(created)) + 'Z'
    return {'createdAt': ts, 'createdBy': args.client_id or 'stepop-test', 'createdByType': 'Application', 'lastModifiedAt': ts,
            'lastModifiedBy': args.client_id or 'stepop-test', 'lastModifiedByType': 'Application'}


class Job:
    def __init__(self, name, body):
        self.name = name
        self.body = body
        self.props = body['properties']
        self.status = 'NotStarted'
        self.error = None
        self.created = time.time()
        self.cancel_requested = False
        self.cid = None
        self.env = {}
        self.rules = [dict(r) for r in rules if r.get('job') in ('*', name)]
        self.history = ['NotStarted']

    def move(self, status):
        self.status = status
        self.history.append(status)

    def resource(self):
        p = dict(self.props)
        p['status'] = self.status
        p.setdefault('experimentName', 'Default')
        p.setdefault('isArchived', False)
        p['services'] = {'Studio': {'jobServiceType': 'Studio', 'endpoint': '%s/_/studio/%s' % (args.url, self.name)}}
        if self.error:
            p['error'] = self.error
        return {'id': ws_path() + '/jobs/' + self.name, 'name': self.name,
                'type': PROVIDER + '/workspaces/jobs', 'properties': p, 'systemData': system_data(self.created)}

    def summary(self):
        return {'name': self.name, 'status': self.status, 'history': self.history, 'error': self.error,
                'env': self.env, 'container': self.cid, 'tags': self.props.get('tags')}

    def finish(self, status, code=None, message=None):
        with lock:
            if code:
                self.error = {'code': code, 'message': message}
            self.move(status)

    def run(self):
        try:
            self.life()
        except Exception as e:  # a bug here must show, not leave the job running for ever
            print('azureml_fake: job %s: %s: %s' % (self.name, type(e).__name__, e), file=sys.stderr)
            self.finish('Failed', 'SystemError', 'azureml_fake: %s' % e)

    def life(self):
        for st in ('Queued', 'Starting'):
            time.sleep(args.start_delay)
            with lock:
                if self.cancel_requested:
                    return self.finish('Canceled')
                self.move(st)
            while st == 'Queued' and any(r.get('stay_queued') for r in self.rules):
                time.sleep(0.2)
                with lock:
                    if self.cancel_requested:
                        self.move('Canceled')
                        return
        env_id = self.props['environmentId']
        with lock:
            image = envs[env_id.lower()]['properties'].get('image')
        if podman('image', 'exists', image).returncode != 0:
            return self.finish('Failed', 'UserError', 'Failed to pull the image %s of environment %s: image not found'
                               % (image, env_id.split('/environments/')[-1]))
        env = dict(self.props.get('environmentVariables') or {})
        for kv in args.container_env:
            k, _, v = kv.partition('=')
            env[k] = v
        env['AZUREML_RUN_ID'] = self.name
        compute = (self.props.get('computeId') or '').rsplit('/', 1)[-1] or \
            (self.props.get('resources') or {}).get('instanceType', '')
        a = ['run', '-d', '--name', 'azureml-%s-%s' % (self.name, secrets.token_hex(3)), '--pull', 'never',
             '--log-driver', 'k8s-file', '--network', 'host', '--label', 'azureml-fake.job=' + self.name]
        for lb in args.container_label:
            a += ['--label', lb]
        mem = memory_of(compute)
        if mem:
            a += ['--memory', mem, '--memory-swap', mem]
        for k, v in sorted(env.items()):
            a += ['--env', '%s=%s' % (k, v)]
        a += ['--entrypoint', '/bin/sh', image, '-c', self.props['command']]
        with lock:
            self.env = env
            if self.cancel_requested:
                self.move('Canceled')
                return
        r = podman(*a)
        cid = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        if not cid:
            podman('rm', '-f', '-t', '0', a[3])
            return self.finish('Failed', 'UserError', 'the container could not be started: %s' % r.stderr.strip()[-300:])
        with lock:
            containers.add(cid)
            self.cid = cid
            if not self.cancel_requested:
                self.move('Running')
        limit = parse_duration((self.props.get('limits') or {}).get('timeout'))
        outcome, code, oom = self.wait(limit)
        if outcome == 'exited':
            with lock:
                self.move('Finalizing')
        time.sleep(0.2)
        if outcome == 'canceled':
            return self.finish('Canceled')
        if outcome == 'timeout':
            return self.finish('Failed', 'JobTimeout', 'The job ran past its limits.timeout of %ss and was stopped'
                               % int(limit))
        if code == 0:
            return self.finish('Completed')
        if oom:
            return self.finish('Failed', 'UserError', 'The job\'s container ran out of memory (OOMKilled), exit code %d'
                               % code)
        logs = podman('logs', '--tail', '3', cid).stdout.strip().replace('\n', ' | ')
        return self.finish('Failed', 'UserError', 'Execution failed. User process exited with exit code %d. Last '
                           'lines: %s' % (code, logs[-300:]))

    def wait(self, limit):
        cid = self.cid
        started = time.time()
        waiter = subprocess.Popen(podman_cmd('wait', cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=args.jobs_dir)
        outcome = None
        while waiter.poll() is None:
            time.sleep(0.2)
            if outcome:
                continue
            with lock:
                if self.cancel_requested:
                    outcome = 'canceled'
            if not outcome and limit and time.time() - started > limit:
                outcome = 'timeout'
            if outcome:
                threading.Thread(target=podman, args=('stop', '-t', str(args.stop_grace), cid), daemon=True).start()
        r = podman('inspect', '--format', 'json', cid)
        try:
            st = json.loads(r.stdout)[0]['State']
        except (ValueError, IndexError, KeyError):
            st = {'ExitCode': 137, 'OOMKilled': False}
        code = int(st.get('ExitCode', 0))
        oom = bool(st.get('OOMKilled')) or (code == 137 and oom_in_dmesg(cid))
        with lock:
            if not outcome and self.cancel_requested:
                outcome = 'canceled'
        return outcome or 'exited', code, oom


def parse_duration(text):
    if not text:
        return None
    m = DURATION.match(text)
    if not m:
        return None
    days = int((m.group(4) or '0D')[:-1])
    h = int((m.group(6) or '0H')[:-1])
    mi = int((m.group(7) or '0M')[:-1])
    s = float((m.group(8) or '0S')[:-1])
    return days * 86400 + h * 3600 + mi * 60 + s


# ---- HTTP --------------------------------------------------------------------------------------
RESOURCE = re.compile(r'^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/' + re.escape(PROVIDER) +
                      r'/workspaces/([^/]+)/(?:environments/([^/]+)/versions/([^/]+)|jobs(?:/([^/]+)(/cancel)?)?)$',
                      re.IGNORECASE)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj, headers=None):
        body = json.dumps(obj).encode() if obj is not None else b''
        self.send_response(status)
        if obj is not None:
            self.send_header('Content-Type', 'application/json; charset=utf-8')
        self.send_header('x-ms-request-id', str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.entry['status'] = status

    def error(self, e):
        self.entry['error'] = e.code
        self.reply(e.status, {'error': {'code': e.code, 'message': e.message}}, e.headers)

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def handle_any(self, method):
        raw = self.body()
        u = urllib.parse.urlsplit(self.path)
        self.entry = {'method': method, 'path': u.path}
        if u.path.startswith('/_/'):
            return self.control(method, u.path, raw)
        with lock:
            calls.append(self.entry)
        try:
            self.arm(method, u, raw)
        except ApiError as e:
            self.error(e)

    def do_GET(self):
        self.handle_any('GET')

    def do_PUT(self):
        self.handle_any('PUT')

    def do_POST(self):
        self.handle_any('POST')

    def do_DELETE(self):
        self.handle_any('DELETE')

    def authorize(self):
        auth = self.headers.get('Authorization') or ''
        bad = {'WWW-Authenticate': 'Bearer authorization_uri="%s", error="invalid_token"' % args.token_verify}
        tok = auth[7:].strip() if auth.startswith('Bearer ') else ''
        if not tok:
            self.entry['auth'] = 'missing'
            raise ApiError(401, 'AuthenticationFailed', 'Authentication failed. The \'Authorization\' header is '
                           'missing.', bad)
        with lock:
            claims, when = verified.get(tok, (None, 0))
        if time.time() - when > 30:
            req = urllib.request.Request(args.token_verify + '/_/whoami', headers={'Authorization': 'Bearer ' + tok})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    claims = json.load(r)
            except urllib.error.HTTPError:
                claims = None
            with lock:
                verified[tok] = (claims, time.time())
        if claims is None:
            self.entry['auth'] = 'refused'
            raise ApiError(401, 'InvalidAuthenticationToken', 'The access token is invalid or expired.', bad)
        if claims.get('aud', '').rstrip('/') != ARM_RESOURCE:
            self.entry['auth'] = 'audience'
            raise ApiError(401, 'InvalidAuthenticationTokenAudience', 'The access token has been obtained for the '
                           'wrong audience or resource \'%s\'.' % claims.get('aud'), bad)
        if claims.get('tid') != args.tenant or (args.client_id and claims.get('appid') != args.client_id):
            self.entry['auth'] = 'tenant'
            raise ApiError(401, 'InvalidAuthenticationTokenTenant', 'The access token is from the wrong issuer or '
                           'application.', bad)
        self.entry['auth'] = 'ok'

    def arm(self, method, u, raw):
        self.authorize()
        with lock:
            f = next((f for f in faults if f['left'] > 0 and f['op'] in (None, method)), None)
            if f:
                f['left'] -= 1
        if f:
            raise ApiError(500, 'InternalServerError', 'azureml_fake: a scripted internal error')
        q = dict(urllib.parse.parse_qsl(u.query))
        if u.path.startswith('/_ops/'):
            return self.operation(u.path)
        if q.get('api-version') != M['api_version']:
            raise ApiError(400, 'InvalidApiVersionParameter', 'The api-version \'%s\' is invalid. This fake serves '
                           '\'%s\' (the mappers of %s %s).' % (q.get('api-version'), M['api_version'], M['package'],
                                                                M['version']))
        m = RESOURCE.match(u.path)
        if not m:
            raise ApiError(404, 'NotFound', 'No route for %s %s' % (method, u.path))
        sub, rg, ws, env, ver, job, cancel = m.groups()
        if sub != args.subscription:
            raise ApiError(404, 'SubscriptionNotFound', 'The subscription \'%s\' could not be found.' % sub)
        if rg.lower() != args.resource_group.lower():
            raise ApiError(404, 'ResourceGroupNotFound', 'Resource group \'%s\' could not be found.' % rg)
        if ws.lower() != args.workspace.lower():
            raise ApiError(404, 'ResourceNotFound', 'The Resource \'%s/workspaces/%s\' under resource group \'%s\' '
                           'was not found.' % (PROVIDER, ws, rg))
        if env:
            return self.environment(method, env, ver, raw)
        if cancel:
            if method != 'POST':
                raise ApiError(405, 'MethodNotAllowed', 'cancel takes POST')
            return self.cancel(job)
        if job is None:
            if method != 'GET':
                raise ApiError(405, 'MethodNotAllowed', '%s on the jobs collection' % method)
            with lock:
                value = [j.resource() for j in jobs.values()]
            return self.answer(200, {'value': value}, 'JobBaseResourceArmPaginatedResult')
        return self.job(method, job, raw)

    def parse(self, raw):
        try:
            return json.loads(raw or b'null')
        except ValueError as e:
            raise user_error('The request body is not valid JSON: %s' % e)

    def answer(self, status, obj, cls, headers=None):
        errs = validate(json.loads(json.dumps(obj)), cls, answer=True)
        if errs:
            print('azureml_fake: invalid %s answer: %s\n%s' % (cls, errs, json.dumps(obj)), file=sys.stderr)
            raise ApiError(500, 'InternalServerError', 'azureml_fake built an invalid %s answer: %s' % (cls, errs))
        self.reply(status, obj, headers)

    def environment(self, method, name, ver, raw):
        rid = '%s/environments/%s/versions/%s' % (ws_path(), name, ver)
        if method == 'GET':
            with lock:
                e = envs.get(rid.lower())
            if not e:
                raise user_error('Not found: environment %s version %s' % (name, ver), 404)
            return self.answer(200, e, 'EnvironmentVersion')
        if method != 'PUT':
            raise ApiError(405, 'MethodNotAllowed', '%s on an environment version' % method)
        body = self.parse(raw)
        errs = validate(body, 'EnvironmentVersion')
        self.entry['validation'] = '; '.join(errs) or 'ok'
        if errs:
            raise user_error('The request is invalid: %s' % '; '.join(errs))
        if not (body['properties'] or {}).get('image'):
            raise user_error('An environment needs an image or a build context (this fake: an image)')
        p = dict(body['properties'])
        p.update({'environmentType': 'UserCreated', 'isArchived': p.get('isArchived', False),
                  'isAnonymous': p.get('isAnonymous', False)})
        e = {'id': rid, 'name': ver, 'type': PROVIDER + '/workspaces/environments/versions', 'properties': p,
             'systemData': system_data(time.time())}
        with lock:
            existed = rid.lower() in envs
            if existed and envs[rid.lower()]['properties'].get('image') != p['image']:
                raise user_error('Environment %s version %s exists with another image; versions are immutable'
                                 % (name, ver), 409)
            envs[rid.lower()] = e
        self.answer(200 if existed else 201, e, 'EnvironmentVersion')

    def job(self, method, name, raw):
        if method == 'GET':
            with lock:
                j = jobs.get(name)
                res = j.resource() if j else None
            if not res:
                raise user_error('Not found: job %s' % name, 404)
            return self.answer(200, res, 'JobBase')
        if method != 'PUT':
            raise ApiError(405, 'MethodNotAllowed', '%s on a job' % method)
        body = self.parse(raw)
        errs = validate(body, 'JobBase')
        self.entry['validation'] = '; '.join(errs) or 'ok'
        if errs:
            raise user_error('The request is invalid: %s' % '; '.join(errs))
        p = body['properties']
        if p.get('jobType') != 'Command':
            raise user_error('azureml_fake runs command jobs only, not %s' % p.get('jobType'))
        with lock:
            if name in jobs:
                raise ApiError(409, 'UserError', 'A job named \'%s\' exists already in workspace %s; job names are '
                               'unique' % (name, args.workspace))
            if p['environmentId'].lower() not in envs:
                raise user_error('Environment %s not found in workspace %s' % (p['environmentId'], args.workspace))
            cid = p.get('computeId')
            if cid:
                if not cid.lower().startswith((ws_path() + '/computes/').lower()):
                    raise user_error('computeId %s is not a compute of workspace %s' % (cid, args.workspace))
                if args.computes and cid.rsplit('/', 1)[-1] not in args.computes:
                    raise user_error('Compute %s not found in workspace %s' % (cid.rsplit('/', 1)[-1], args.workspace))
            elif not (p.get('resources') or {}).get('instanceType'):
                raise user_error('A command job needs a computeId or serverless resources (instanceType)')
            j = Job(name, body)
            jobs[name] = j
            res = j.resource()
        threading.Thread(target=j.run, daemon=True).start()
        self.answer(201, res, 'JobBase')

    def cancel(self, name):
        with lock:
            j = jobs.get(name)
            if not j:
                raise user_error('Not found: job %s' % name, 404)
            op = secrets.token_hex(8)
            ops[op] = name
            if j.status not in ('Completed', 'Failed', 'Canceled'):
                j.cancel_requested = True
                if j.status not in ('NotStarted', 'Queued', 'Starting'):
                    j.move('CancelRequested')
        base = '%s/_ops/%s' % (args.url, op)
        self.reply(202, None, {'Azure-AsyncOperation': base + '?api-version=' + M['api_version'],
                               'Location': base + '/result?api-version=' + M['api_version'], 'Retry-After': '1'})

    def operation(self, path):
        m = re.match(r'^/_ops/([0-9a-f]+)(/result)?$', path)
        with lock:
            name = ops.get(m.group(1)) if m else None
            j = jobs.get(name) if name else None
            done = j is not None and j.status in ('Completed', 'Failed', 'Canceled')
        if not j:
            raise ApiError(404, 'NotFound', 'no such operation')
        if m.group(2):
            return self.reply(200 if done else 202, None, {} if done else {'Retry-After': '1'})
        self.reply(200, {'id': path, 'name': m.group(1), 'status': 'Succeeded' if done else 'InProgress'},
                   {} if done else {'Retry-After': '1'})

    # -- control
    def control(self, method, path, raw):
        if path == '/_/log':
            with lock:
                return self.reply(200, list(calls))
        if path == '/_/jobs':
            with lock:
                return self.reply(200, [j.summary() for j in jobs.values()])
        if path == '/_/script' and method == 'POST':
            new = json.loads(raw)
            with lock:
                for r in new if isinstance(new, list) else [new]:
                    if r.get('internal_error'):
                        faults.append({'left': int(r['internal_error']), 'op': r.get('op')})
                    if 'job' in r:
                        rules.append(r)
            return self.reply(200, {'rules': len(rules), 'faults': len(faults)})
        self.reply(404, {'error': {'code': 'NotFound', 'message': path}})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def cleanup(*_):
    if stopping.is_set():
        return
    stopping.set()
    for cid in list(containers):
        podman('rm', '-f', '-t', '0', cid)
    os._exit(0)


def main():
    global args, M
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port-file', required=True)
    p.add_argument('--mappers', required=True, help='the JSON azureml_mappers.js wrote')
    p.add_argument('--podman-dir', required=True)
    p.add_argument('--jobs-dir', required=True)
    p.add_argument('--subscription', default='00000000-0000-0000-0000-000000000001')
    p.add_argument('--resource-group', default='rg-stepop')
    p.add_argument('--workspace', default='ws-stepop')
    p.add_argument('--computes', action='append', default=[])
    p.add_argument('--token-verify', required=True, help="azure_auth_fake.py's URL (its /_/whoami)")
    p.add_argument('--tenant', required=True)
    p.add_argument('--client-id', default='', help='the only appid accepted (any when empty)')
    p.add_argument('--container-label', action='append', default=[])
    p.add_argument('--container-env', action='append', default=[])
    p.add_argument('--compute-memory', action='append', default=[], help='NAME=BYTES: a compute or instance type')
    p.add_argument('--stop-grace', type=int, default=10)
    p.add_argument('--start-delay', type=float, default=0.3)
    args = p.parse_args()
    args.podman_dir = os.path.abspath(args.podman_dir)
    args.jobs_dir = os.path.abspath(args.jobs_dir)
    os.makedirs(args.jobs_dir, exist_ok=True)
    with open(args.mappers) as f:
        M = json.load(f)
    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    srv = Server(('127.0.0.1', 0), Handler)
    args.url = 'http://127.0.0.1:%d' % srv.server_address[1]
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
