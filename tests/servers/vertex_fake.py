#!/usr/bin/python3
"""A Vertex AI custom-job fake that runs the job's container with Podman, for the tests.

What is Google's here, and what is ours:
- Google's: the request checks. The .proto files that npm @google-cloud/aiplatform ships (and
  google-gax's google/api, google/rpc, google/protobuf ones) are compiled by Debian's protoc into a
  descriptor set cached under --proto-cache (rebuilt when a .proto changed) and loaded with
  Debian's python3-protobuf. Bodies are parsed strictly by json_format.Parse (unknown fields, bad
  enums, bad durations and timestamps refused), then every field annotated
  google.api.field_behavior REQUIRED must be set and every OUTPUT_ONLY one must not (recursively;
  Google itself ignores output-only fields in requests: refusing them is stricter). The routes are
  the google.api.http annotations of JobService's CreateCustomJob, GetCustomJob, ListCustomJobs,
  CancelCustomJob and DeleteCustomJob, path variables and query parameters bound as Google's HTTP
  transcoding binds them. Answers are the proto messages printed by json_format (integer enums
  when the client asks for $alt=json;enum-encoding=int, as google-gax's REST fallback does).
- Ours: the state machine (QUEUED -> PENDING -> RUNNING -> SUCCEEDED | FAILED; CANCELLING ->
  CANCELLED; EXPIRED for a scripted stockout), the timings, every error message and code in a job's
  `error` and in refusals (modelled on Vertex's, not checked against it), the Cloud Logging answer
  (no logging .proto ships with these packages: POST /v2/entries:list takes and returns the
  documented JSON fields, checked by hand), and the token check (below).

Every API call needs "Authorization: Bearer <token>": with --tokens FILE the token must be one of
the file's (a token per line, or JSON lines {"token", "expires"}; re-read when an unknown token
shows up, as the SageMaker fake re-reads its keys); with --tokeninfo URL the token is checked by
GET URL?access_token=TOKEN (an OAuth2 tokeninfo route: 200 with expires_in > 0); with neither,
any non-empty bearer token is taken (and /_/log says "unchecked").

A job runs its container with Podman (storage under --podman-dir, as tests/lib.sh): the first
worker pool's containerSpec (imageUri; command as the entrypoint, args after it; without a command
the image's own entrypoint with args), env from containerSpec.env plus CLOUD_ML_JOB_ID,
CLOUD_ML_PROJECT_ID, CLOUD_ML_REGION, AIP_* directories when baseOutputDirectory is set, and
--container-env (the test network's endpoints). Host network, hostname workerpool0-0, a memory
limit from MEMORY below or --machine-memory. Not emulated: python packages, more than one replica
or worker pool (refused), networks, reservations, encryption, web access (the URIs are not given).

States (ours): QUEUED and PENDING take --start-delay each; an image Podman does not have fails the
job without it ever running (no startTime): "Unable to pull the container image ..."; RUNNING
while the container runs; exit 0 is SUCCEEDED; another exit is FAILED with "The replica
workerpool0-0 exited with a non-zero status of N. ..." (code 3); a command the image lacks
(`podman run` fails) is FAILED "The replica workerpool0-0 could not run the container's command. ..."
(code 3, no exit code; the runtime's error is the job's log); an OOM kill says so (code 3);
scheduling.timeout passed stops the container (SIGTERM, SIGKILL after --stop-grace) and fails
with code 4; :cancel is CANCELLING (the container gets SIGTERM, SIGKILL after --stop-grace), then
CANCELLED with error code 1 "CANCELED".

Control endpoints (no token, under /_/):
- POST /_/script: a JSON rule or list of rules; a job rule applies to jobs created after it whose
  displayName is "job" ("*": any), to "count" of them (all when absent).
  {"job", "stockout": true, "after": S (2)}: the job stays PENDING S seconds, never starts, then
  ends EXPIRED when its scheduling strategy is FLEX_START or it has a maxWaitDuration, else FAILED,
  with code 8 and a stockout message.
  {"job", "preempt_after": S, "preemptions": N (1)}: the container is stopped S seconds after it
  started (SIGTERM, SIGKILL after the grace); with scheduling.restartJobOnWorkerRestart a new
  container with the same environment starts (the job stays RUNNING), N times; without it the job
  is FAILED with code 14 and a preemption message.
  {"throttle": N, "op": RPC}: the next N calls answer 429 RESOURCE_EXHAUSTED; "internal_error": 500
  INTERNAL; "unavailable": 503 UNAVAILABLE ("op" absent: any call).
- GET /_/log: the calls seen ({"rpc", "method", "path", "status", "error", "token"}).
- GET /_/jobs: the jobs ({"name", "id", "display_name", "state", "labels", "containers", "env",
  "started", "error"}).
On SIGTERM the fake removes the containers it started and exits.

--check DRY_RUN_JSON decodes the requests of a `stepop submit --dry-run` as the server would (the
route, the strict parse, field_behavior), prints "ok RPC URL" or "refused: ..." for each and exits
non-zero when one is refused; --compile-only builds the descriptor set and exits.
"""
import argparse
import datetime
import hashlib
import http.server
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

PKG = 'google.cloud.aiplatform.v1'
SERVICE = PKG + '.JobService'
RPCS = ('CreateCustomJob', 'GetCustomJob', 'ListCustomJobs', 'CancelCustomJob', 'DeleteCustomJob')
ROOT_PROTOS = ('google/cloud/aiplatform/v1/job_service.proto', 'google/rpc/status.proto',
               'google/rpc/error_details.proto')
FIELD_BEHAVIOR = 1052       # google.api.field_behavior, an extension of FieldOptions
HTTP_RULE = 72295728        # google.api.http, an extension of MethodOptions
REQUIRED, OUTPUT_ONLY = 2, 3
# Query parameters every Google API takes besides the request's fields (system parameters).
SYSTEM_PARAMS = {'$alt', 'alt', '$prettyPrint', 'prettyPrint', 'key', 'fields', '$fields', 'quotaUser', 'access_token',
                 '$callback', 'callback', 'upload_protocol', 'uploadType'}
# Memory of a few machine types (GiB, from Compute Engine's machine type pages); others DEFAULT_MEMORY.
MEMORY = {'n1-standard-4': 15, 'n1-standard-8': 30, 'n1-highmem-8': 52, 'e2-standard-4': 16, 'e2-standard-8': 32,
          'g2-standard-4': 16, 'g2-standard-8': 32, 'a2-highgpu-1g': 85, 'a2-ultragpu-1g': 170}
DEFAULT_MEMORY = 16
REPLICA = 'workerpool0-0'
STOCKOUT = ('Resources are insufficient in region: %s. Please try a different region or try again later. '
            '(The zone does not have enough resources available to fulfill the request.)')
CODES = {400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND',
         409: 'ALREADY_EXISTS', 412: 'FAILED_PRECONDITION', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL',
         501: 'UNIMPLEMENTED', 503: 'UNAVAILABLE'}

args = None
lock = threading.Lock()
calls = []
rules = []
op_faults = []
jobs = {}           # id -> Job
tokens = {}         # token -> expiry (0: none)
tokeninfo_ok = {}   # token -> expiry, from the tokeninfo route
containers = set()
stopping = threading.Event()
M = {}              # full message name -> class
ROUTES = []         # (http method, compiled path, rpc name, body field, request class, [path fields])


class ApiError(Exception):
    def __init__(self, status, message, details=None, grpc_status=None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or []
        self.grpc_status = grpc_status or CODES.get(status, 'UNKNOWN')


# ---- the descriptor set ------------------------------------------------------------------------
def proto_roots():
    nm = args.node_modules
    return [os.path.join(nm, '@google-cloud/aiplatform/build/protos'), os.path.join(nm, 'google-gax/build/protos')]


def stamp_of(names):
    """What the cached set was built from: protoc's version and each .proto's path, size and mtime."""
    h = hashlib.sha256(subprocess.run(['protoc', '--version'], stdout=subprocess.PIPE, text=True).stdout.encode())
    for name in sorted(names):
        for root in proto_roots():
            p = os.path.join(root, name)
            if os.path.exists(p):
                st = os.stat(p)
                h.update(('%s %d %d\n' % (p, st.st_size, st.st_mtime_ns)).encode())
                break
        else:
            h.update(('%s missing\n' % name).encode())
    return h.hexdigest()


def descriptor_set():
    """The compiled FileDescriptorSet, built by protoc when missing or when a source changed."""
    os.makedirs(args.proto_cache, exist_ok=True)
    out = os.path.join(args.proto_cache, 'vertex.pb')
    stamp = out + '.stamp'
    if os.path.exists(out) and os.path.exists(stamp):
        with open(stamp) as f:
            st = json.load(f)
        if stamp_of(st['files']) == st['hash']:
            with open(out, 'rb') as f:
                fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
            return fds
    tmp = '%s.%d.tmp' % (out, os.getpid())
    cmd = ['protoc'] + ['-I' + r for r in proto_roots()] + ['--include_imports', '--descriptor_set_out=' + tmp]
    r = subprocess.run(cmd + list(ROOT_PROTOS), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit('vertex_fake: protoc failed: %s' % r.stdout)
    with open(tmp, 'rb') as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    names = [fd.name for fd in fds.file]
    with open(stamp + '.tmp%d' % os.getpid(), 'w') as f:
        json.dump({'files': names, 'hash': stamp_of(names)}, f)
    os.rename(tmp, out)
    os.rename(stamp + '.tmp%d' % os.getpid(), stamp)
    return fds


def read_varint(data, i):
    v, shift = 0, 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def wire_fields(data):
    """(number, value) of each field in serialized DATA: an int for a varint, bytes for a
    length-delimited field (the options' extensions this pool does not know are read this way)."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError('unexpected wire type %d' % wt)
        yield num, v


def varints(data, number):
    """The values of varint field NUMBER in DATA, packed or not."""
    out = []
    for num, v in wire_fields(data):
        if num != number:
            continue
        if isinstance(v, int):
            out.append(v)
            continue
        j = 0
        while j < len(v):
            x, j = read_varint(v, j)
            out.append(x)
    return out


def submessage(data, number):
    """The bytes of length-delimited field NUMBER in DATA (None when absent)."""
    return next((v for num, v in wire_fields(data) if num == number), None)


BEHAVIOR = {}       # (message full name, field name) -> set of field_behavior values


def load_protos():
    fds = descriptor_set()
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
        prefix = fd.package + '.' if fd.package else ''

        def walk(msgs, scope):
            for m in msgs:
                full = scope + m.name
                for f in m.field:
                    b = set(varints(f.options.SerializeToString(), FIELD_BEHAVIOR)) if f.HasField('options') else set()
                    if b:
                        BEHAVIOR[(full, f.name)] = b
                walk(m.nested_type, full + '.')
        walk(fd.message_type, prefix)
    get_class = getattr(message_factory, 'GetMessageClass', None)
    factory = None if get_class else message_factory.MessageFactory(pool)

    def cls(name):
        if name not in M:
            d = pool.FindMessageTypeByName(name)
            M[name] = get_class(d) if get_class else factory.GetPrototype(d)
        return M[name]
    for fd in fds.file:
        for svc in fd.service:
            if fd.package + '.' + svc.name != SERVICE:
                continue
            for m in svc.method:
                if m.name not in RPCS:
                    continue
                rule = cls('google.api.HttpRule').FromString(submessage(m.options.SerializeToString(), HTTP_RULE))
                bindings = [rule] + list(rule.additional_bindings)
                for b in bindings:
                    verb = b.WhichOneof('pattern')
                    template = getattr(b, verb)
                    regex, fields = compile_template(template)
                    ROUTES.append((verb.upper(), regex, m.name, b.body, cls(m.input_type.lstrip('.')), fields))
                cls(m.output_type.lstrip('.'))
    for name in ('google.rpc.Status', 'google.rpc.BadRequest', PKG + '.CustomJob', 'google.longrunning.Operation',
                 'google.protobuf.Empty', PKG + '.DeleteOperationMetadata'):
        cls(name)
    args.pool = pool
    missing = set(RPCS) - {r[2] for r in ROUTES}
    if missing:
        sys.exit('vertex_fake: no google.api.http route for %s' % ', '.join(sorted(missing)))


def compile_template(template):
    """A google.api.http path template as a regular expression; {field=pattern} become groups."""
    fields = []
    out = ''
    pos = 0
    for m in re.finditer(r'\{([a-z_.]+)(?:=([^}]*))?\}', template):
        out += re.escape(template[pos:m.start()])
        pattern = m.group(2) or '*'
        segs = []
        for seg in pattern.split('/'):
            segs.append('[^/]+' if seg == '*' else '.+' if seg == '**' else re.escape(seg))
        out += '(?P<f%d>%s)' % (len(fields), '/'.join(segs))
        fields.append(m.group(1))
        pos = m.end()
    out += re.escape(template[pos:])
    return re.compile(out + '$'), fields


# ---- the checks --------------------------------------------------------------------------------
def is_set(msg, f):
    if f.label == f.LABEL_REPEATED:
        return len(getattr(msg, f.name)) > 0
    if f.message_type is not None or f.containing_oneof is not None:
        return msg.HasField(f.name)
    return getattr(msg, f.name) != f.default_value


def behaviors(msg, path, errors):
    """google.api.field_behavior over MSG and the messages set in it."""
    d = msg.DESCRIPTOR
    for f in d.fields:
        b = BEHAVIOR.get((d.full_name, f.name), set())
        where = path + f.name
        present = is_set(msg, f)
        if REQUIRED in b and not present:
            errors.append((where, 'Required field is not set.'))
        if OUTPUT_ONLY in b and present:
            errors.append((where, 'Output only field must not be set.'))
        if not present or f.message_type is None:
            continue
        if f.message_type.GetOptions().map_entry:
            vf = f.message_type.fields_by_name['value']
            if vf.message_type is not None:
                for k, v in getattr(msg, f.name).items():
                    behaviors(v, '%s[%s].' % (where, k), errors)
        elif f.label == f.LABEL_REPEATED:
            for i, v in enumerate(getattr(msg, f.name)):
                behaviors(v, '%s[%d].' % (where, i), errors)
        else:
            behaviors(getattr(msg, f.name), where + '.', errors)


def field_errors(errors):
    """A 400 in Vertex's shape: the list of found errors, and a google.rpc.BadRequest detail."""
    text = 'List of found errors:\t' + ''.join('%d.Field: %s; Message: %s\t' % (i + 1, f, m)
                                               for i, (f, m) in enumerate(errors))
    details = [{'@type': 'type.googleapis.com/google.rpc.BadRequest',
                'fieldViolations': [{'field': f, 'description': m} for f, m in errors]}]
    return ApiError(400, text, details)


def parse_into(msg, text, where):
    try:
        json_format.Parse(text, msg, ignore_unknown_fields=False, descriptor_pool=args.pool)
    except json_format.ParseError as e:
        raise ApiError(400, 'Invalid JSON payload received. %s' % e,
                       [{'@type': 'type.googleapis.com/google.rpc.BadRequest',
                         'fieldViolations': [{'field': where, 'description': 'Invalid JSON payload received. %s' % e}]}])


def set_field(msg, dotted, value):
    """A path variable or query parameter into the request (Google's HTTP transcoding)."""
    *parents, last = dotted.split('.')
    for p in parents:
        msg = getattr(msg, p)
    d = msg.DESCRIPTOR
    f = d.fields_by_name.get(last) or next((x for x in d.fields if x.json_name == last), None)
    if f is None:
        raise ApiError(400, 'Invalid JSON payload received. Unknown name "%s": Cannot bind query parameter. Field \'%s\' '
                       'could not be found in request message.' % (dotted, dotted))
    if f.message_type is not None:
        # Well-known types take their JSON form (a FieldMask "a,b", a Duration "3s").
        parse_into(getattr(msg, f.name), json.dumps(value), dotted)
        return
    if f.label == f.LABEL_REPEATED:
        raise ApiError(400, 'repeated query parameter %s is not supported by this fake' % dotted)
    try:
        if f.type in (f.TYPE_INT32, f.TYPE_INT64, f.TYPE_UINT32, f.TYPE_UINT64, f.TYPE_SINT32, f.TYPE_SINT64):
            value = int(value)
        elif f.type == f.TYPE_BOOL:
            value = {'true': True, 'false': False}[value]
        elif f.type == f.TYPE_ENUM:
            value = f.enum_type.values_by_name[value].number if not value.isdigit() else int(value)
        setattr(msg, f.name, value)
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, 'Invalid value at \'%s\' (%s), "%s"' % (dotted, f.type, value))


# ---- tokens ------------------------------------------------------------------------------------
def load_tokens():
    if not args.tokens or not os.path.exists(args.tokens):
        return
    with open(args.tokens) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith('{'):
                d = json.loads(line)
                tokens[d['token']] = d.get('expires') or 0
            else:
                tokens[line] = 0


def check_token(handler):
    """Refuses a call without a bearer token Google would take; says how it was checked."""
    auth = handler.headers.get('Authorization') or ''
    if not auth.startswith('Bearer ') or not auth[7:].strip():
        raise ApiError(401, 'Request is missing required authentication credential. Expected OAuth 2 access token, '
                       'login cookie or other valid authentication credential.')
    token = auth[7:].strip()
    bad = ApiError(401, 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie '
                   'or other valid authentication credential.')
    if args.tokens:
        with lock:
            if token not in tokens:
                load_tokens()
            exp = tokens.get(token)
        if exp is None or (exp and time.time() > exp):
            raise bad
        return 'file'
    if args.tokeninfo:
        exp = tokeninfo_ok.get(token)
        if exp and time.time() < exp:
            return 'tokeninfo'
        url = args.tokeninfo + ('&' if '?' in args.tokeninfo else '?') + urllib.parse.urlencode({'access_token': token})
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                info = json.loads(r.read() or b'{}')
        except (urllib.error.URLError, ValueError, OSError):
            raise bad
        left = int(info.get('expires_in') or 0)
        if left <= 0:
            raise bad
        tokeninfo_ok[token] = time.time() + left
        return 'tokeninfo'
    return 'unchecked'


# ---- Podman ------------------------------------------------------------------------------------
def podman_cmd(*a):
    d = args.podman_dir
    return ['podman', '--root', d + '/root', '--runroot', d + '/run', '--tmpdir', d + '/tmp'] + list(a)


def podman(*a, timeout=None):
    # In the jobs directory: conmon writes a file named "oom" into its working directory when a
    # container is OOM-killed, which would land in the checkout the tests run from.
    return subprocess.run(podman_cmd(*a), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, cwd=args.jobs_dir)


def oom_in_dmesg(cid):
    """Podman on cgroup v1 may report OOMKilled=false after a cgroup OOM; the kernel log names it."""
    try:
        out = subprocess.run(['dmesg'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return False
    return any('oom_memcg=' in line and 'libpod-' + cid in line for line in out.splitlines())


def memory_bytes(machine_type):
    for spec in args.machine_memory:
        name, _, size = spec.partition('=')
        if name == machine_type:
            return int(size)
    return MEMORY.get(machine_type, DEFAULT_MEMORY) << 30


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')


# ---- jobs --------------------------------------------------------------------------------------
class Job:
    def __init__(self, msg, parent):
        self.id = str(random.randrange(10 ** 18, 10 ** 19))
        self.msg = msg
        self.project, self.location = parent.split('/')[1], parent.split('/')[3]
        msg.name = '%s/customJobs/%s' % (parent, self.id)
        self.rules = [dict(r) for r in rules if r.get('job') in ('*', msg.display_name) and r.get('count', 1) > 0]
        for r in rules:
            if r.get('job') in ('*', msg.display_name) and 'count' in r and r['count'] > 0:
                r['count'] -= 1
        self.cancel_requested = False
        self.exec_failed = False    # the last container's command could not be run
        self.cid = None
        self.cids = []
        self.env = {}
        self.entries = []       # Cloud Logging entries, oldest first
        self.seq = 0
        self.dir = os.path.join(args.jobs_dir, self.id)
        now = time.time()
        msg.create_time.FromNanoseconds(int(now * 1e9))
        self.set_state('JOB_STATE_QUEUED')

    def set_state(self, state, error=None, code=None):
        """A state change, made with the lock held."""
        m = self.msg
        m.state = M[PKG + '.CustomJob'].DESCRIPTOR.fields_by_name['state'].enum_type.values_by_name[state].number
        now = int(time.time() * 1e9)
        m.update_time.FromNanoseconds(now)
        if state == 'JOB_STATE_RUNNING' and not m.HasField('start_time'):
            m.start_time.FromNanoseconds(now)
        if state in ('JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'):
            m.end_time.FromNanoseconds(now)
        if error:
            m.error.code = code
            m.error.message = error

    def state(self):
        return M[PKG + '.CustomJob'].DESCRIPTOR.fields_by_name['state'].enum_type.values_by_number[self.msg.state].name

    def rule(self, key):
        return next((r for r in self.rules if r.get(key)), None)

    def summary(self):
        return {'name': self.msg.name, 'id': self.id, 'display_name': self.msg.display_name, 'state': self.state(),
                'labels': dict(self.msg.labels), 'containers': list(self.cids), 'env': self.env,
                'started': self.msg.HasField('start_time'), 'error': self.msg.error.message or None}

    def log(self, text, severity='DEFAULT'):
        now = time.time()
        with lock:
            self.seq += 1
            self.entries.append({
                'logName': 'projects/%s/logs/%s' % (self.project, REPLICA),
                'resource': {'type': 'ml_job', 'labels': {'job_id': self.id, 'project_id': self.project,
                                                          'task_name': REPLICA}},
                'textPayload': text, 'timestamp': rfc3339(now), 'receiveTimestamp': rfc3339(now),
                'severity': severity, 'insertId': '%s-%06d' % (self.id[-8:], self.seq),
                'labels': {'ml.googleapis.com/endpoint': '', 'ml.googleapis.com/job_id/log_area': 'root'}})

    def finish(self, state, error=None, code=None):
        with lock:
            self.set_state(state, error, code)

    def run(self):
        try:
            self.life()
        except Exception as e:  # a bug here must show, not leave the job running for ever
            print('vertex_fake: job %s: %s: %s' % (self.id, type(e).__name__, e), file=sys.stderr)
            self.finish('JOB_STATE_FAILED', 'Internal error occurred. Please retry in a few minutes.', 13)

    def life(self):
        spec = self.msg.job_spec
        sched = spec.scheduling
        time.sleep(args.start_delay)
        with lock:
            if self.cancel_requested:
                return self.set_state('JOB_STATE_CANCELLED', 'CANCELED', 1)
            self.set_state('JOB_STATE_PENDING')
        time.sleep(args.start_delay)
        stock = self.rule('stockout')
        if stock:
            end = time.time() + float(stock.get('after', 2))
            while time.time() < end:
                with lock:
                    if self.cancel_requested:
                        return self.set_state('JOB_STATE_CANCELLED', 'CANCELED', 1)
                time.sleep(0.2)
            flex = sched.strategy == 6 or sched.HasField('max_wait_duration')
            return self.finish('JOB_STATE_EXPIRED' if flex else 'JOB_STATE_FAILED', STOCKOUT % self.location, 8)
        pool = spec.worker_pool_specs[0]
        image = pool.container_spec.image_uri
        if podman('image', 'exists', image).returncode != 0:
            self.log('Unable to pull image %s: not found' % image, 'ERROR')
            return self.finish('JOB_STATE_FAILED', 'Unable to pull the container image %s for the replica %s: the image '
                               'was not found or the job\'s service account cannot read it.' % (image, REPLICA), 3)
        timeout = sched.timeout.ToNanoseconds() / 1e9 if sched.HasField('timeout') else 7 * 86400
        pre = self.rule('preempt_after')
        left = int(pre.get('preemptions', 1)) if pre else 0
        run_seconds = 0.0
        while True:
            with lock:
                if self.cancel_requested:
                    return self.set_state('JOB_STATE_CANCELLED', 'CANCELED', 1)
            self.start_container(pool)
            with lock:
                if self.state() not in ('JOB_STATE_RUNNING', 'JOB_STATE_CANCELLING'):
                    self.set_state('JOB_STATE_RUNNING')
            outcome, code, oom, ran = self.wait(timeout - run_seconds, float(pre['preempt_after']) if left > 0 else None)
            run_seconds += ran
            if outcome == 'preempted':
                left -= 1
                self.log('The replica %s was preempted: its VM was reclaimed.' % REPLICA, 'WARNING')
                if not sched.restart_job_on_worker_restart:
                    return self.finish('JOB_STATE_FAILED', 'The replica %s was preempted and the job does not restart '
                                       'workers (scheduling.restartJobOnWorkerRestart is false).' % REPLICA, 14)
                time.sleep(args.start_delay)
                continue
            if outcome == 'cancelled':
                return self.finish('JOB_STATE_CANCELLED', 'CANCELED', 1)
            if outcome == 'cannot_run':
                return self.finish('JOB_STATE_FAILED', 'The replica %s could not run the container\'s command. To find '
                                   'out more about why your job exited please check the logs: resource.type="ml_job" '
                                   'resource.labels.job_id="%s"' % (REPLICA, self.id), 3)
            if outcome == 'timeout':
                return self.finish('JOB_STATE_FAILED', 'The job exceeded its timeout of %ds (scheduling.timeout) and '
                                   'was stopped.' % int(timeout), 4)
            if code == 0:
                return self.finish('JOB_STATE_SUCCEEDED')
            if oom:
                return self.finish('JOB_STATE_FAILED', 'The replica %s ran out of memory and exited with a non-zero '
                                   'status of %d.' % (REPLICA, code), 3)
            return self.finish('JOB_STATE_FAILED', 'The replica %s exited with a non-zero status of %d. To find out more '
                               'about why your job exited please check the logs: resource.type="ml_job" '
                               'resource.labels.job_id="%s"' % (REPLICA, code, self.id), 3)

    def start_container(self, pool):
        cs = pool.container_spec
        env = {e.name: e.value for e in cs.env}
        for kv in args.container_env:
            k, _, v = kv.partition('=')
            env[k] = v
        env.update({'CLOUD_ML_JOB_ID': self.id, 'CLOUD_ML_PROJECT_ID': self.project, 'CLOUD_ML_REGION': self.location})
        base = self.msg.job_spec.base_output_directory.output_uri_prefix
        if base:
            base = base.rstrip('/')
            env.update({'AIP_MODEL_DIR': base + '/model/', 'AIP_CHECKPOINT_DIR': base + '/checkpoints/',
                        'AIP_TENSORBOARD_LOG_DIR': base + '/logs/'})
        with lock:
            self.env = env
        os.makedirs(self.dir, exist_ok=True)
        mem = str(memory_bytes(pool.machine_spec.machine_type))
        a = ['run', '-d', '--name', 'vertex-%s-%d' % (self.id, len(self.cids)), '--pull', 'never',
             '--log-driver', 'k8s-file', '--network', 'host', '--hostname', REPLICA, '--memory', mem,
             '--memory-swap', mem, '--label', 'vertex-fake.job=' + self.id]
        for lb in args.container_label:
            a += ['--label', lb]
        for k, v in sorted(env.items()):
            a += ['--env', '%s=%s' % (k, v)]
        if cs.command:
            a += ['--entrypoint', json.dumps(list(cs.command)), cs.image_uri]
        else:
            a += [cs.image_uri]
        a += list(cs.args)
        name = a[3]
        r = podman(*a)
        cid = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else None
        with lock:
            self.cids.append(cid or name)
        if r.returncode != 0:
            # The container was created and its command could not be run (an image without it):
            # the runtime's error is what the replica logged.
            podman('rm', '-f', '-t', '0', name)
            for line in r.stderr.strip().splitlines()[-5:]:
                self.log(line, 'ERROR')
            self.exec_failed = True
            return
        with lock:
            containers.add(cid)
            self.cid = cid
        self.exec_failed = False
        threading.Thread(target=self.pump, args=(cid,), daemon=True).start()

    def pump(self, cid):
        """The container's output, line by line, as Cloud Logging entries (stderr as ERROR)."""
        p = subprocess.Popen(podman_cmd('logs', '-f', cid), stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def read(stream, severity):
            for line in stream:
                self.log(line.decode('utf-8', 'replace').rstrip('\n'), severity)
        t = threading.Thread(target=read, args=(p.stderr, 'ERROR'), daemon=True)
        t.start()
        read(p.stdout, 'INFO')
        t.join()
        p.wait()

    def wait(self, time_left, preempt_at):
        """Follows the container to its end: (outcome, exit code, OOM-killed, seconds run)."""
        if self.exec_failed:
            return 'cannot_run', None, False, 0.0
        cid = self.cid
        started = time.time()
        waiter = subprocess.Popen(podman_cmd('wait', cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  cwd=args.jobs_dir)
        outcome = None
        while waiter.poll() is None:
            time.sleep(0.2)
            if outcome:
                continue
            ran = time.time() - started
            with lock:
                if self.cancel_requested:
                    outcome = 'cancelled'
            if not outcome and ran > time_left:
                outcome = 'timeout'
            if not outcome and preempt_at is not None and ran >= preempt_at:
                outcome = 'preempted'
            if outcome:
                threading.Thread(target=podman, args=('stop', '-t', str(args.stop_grace), cid), daemon=True).start()
        ran = time.time() - started
        r = podman('inspect', '--format', 'json', cid)
        try:
            st = json.loads(r.stdout)[0]['State']
        except (ValueError, IndexError, KeyError):
            st = {'ExitCode': 137, 'OOMKilled': False}
        code = int(st.get('ExitCode', 0))
        oom = bool(st.get('OOMKilled')) or (code == 137 and oom_in_dmesg(cid))
        with lock:
            self.cid = None
            if not outcome and self.cancel_requested:
                outcome = 'cancelled'
        time.sleep(0.3)  # lets the log pump read the last lines before the state says the job ended
        return outcome or 'exited', code, oom, ran


# ---- the RPCs ----------------------------------------------------------------------------------
def find_job(name):
    m = re.fullmatch(r'projects/([^/]+)/locations/([^/]+)/customJobs/([^/]+)', name)
    j = jobs.get(m.group(3)) if m else None
    if not j or j.msg.name != name:
        raise ApiError(404, 'The CustomJob does not exist: %s' % name)
    return j


def create_custom_job(req):
    job = req.custom_job
    pools = job.job_spec.worker_pool_specs
    if len(pools) != 1 or pools[0].replica_count not in (0, 1) or not pools[0].HasField('container_spec'):
        raise ApiError(501, 'vertex_fake runs one worker pool of one replica with a containerSpec only')
    if not re.fullmatch(r'projects/[^/]+/locations/[^/]+', req.parent):
        raise ApiError(400, 'Invalid parent: %s' % req.parent)
    msg = M[PKG + '.CustomJob']()
    msg.CopyFrom(job)
    with lock:
        j = Job(msg, req.parent)
        jobs[j.id] = j
        out = M[PKG + '.CustomJob']()
        out.CopyFrom(j.msg)
    threading.Thread(target=j.run, daemon=True).start()
    return out


def get_custom_job(req):
    with lock:
        out = M[PKG + '.CustomJob']()
        out.CopyFrom(find_job(req.name).msg)
    return out


def list_custom_jobs(req):
    if not re.fullmatch(r'projects/[^/]+/locations/[^/]+', req.parent):
        raise ApiError(400, 'Invalid parent: %s' % req.parent)
    m = re.fullmatch(r'\s*labels\.([A-Za-z0-9_-]+)\s*=\s*"?([^"]*)"?\s*', req.filter) if req.filter else None
    if req.filter and not m:
        raise ApiError(400, 'vertex_fake filters on labels.KEY="VALUE" only, not: %s' % req.filter)
    out = M[PKG + '.ListCustomJobsResponse']()
    with lock:
        found = [j for j in jobs.values() if j.msg.name.startswith(req.parent + '/')
                 and (not m or j.msg.labels.get(m.group(1)) == m.group(2))]
        found.sort(key=lambda j: j.msg.create_time.ToNanoseconds(), reverse=True)
        start = int(req.page_token or 0)
        n = req.page_size or 100
        for j in found[start:start + n]:
            out.custom_jobs.add().CopyFrom(j.msg)
    if start + n < len(found):
        out.next_page_token = str(start + n)
    return out


def cancel_custom_job(req):
    with lock:
        j = find_job(req.name)
        st = j.state()
        if st in ('JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'):
            raise ApiError(400, 'Cannot cancel the CustomJob %s in state %s.' % (req.name, st),
                           grpc_status='FAILED_PRECONDITION')
        if st != 'JOB_STATE_CANCELLING':
            j.cancel_requested = True
            j.set_state('JOB_STATE_CANCELLING')
    return M['google.protobuf.Empty']()


def delete_custom_job(req):
    with lock:
        j = find_job(req.name)
        if j.state() not in ('JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED', 'JOB_STATE_EXPIRED'):
            raise ApiError(400, 'The CustomJob %s is in state %s and cannot be deleted; cancel it first.'
                           % (req.name, j.state()), grpc_status='FAILED_PRECONDITION')
        del jobs[j.id]
    op = M['google.longrunning.Operation']()
    op.name = '%s/operations/%d' % (req.name, random.randrange(10 ** 18, 10 ** 19))
    op.done = True
    op.response.Pack(M['google.protobuf.Empty']())
    meta = M[PKG + '.DeleteOperationMetadata']()
    meta.generic_metadata.create_time.GetCurrentTime()
    meta.generic_metadata.update_time.GetCurrentTime()
    op.metadata.Pack(meta)
    return op


HANDLERS = {'CreateCustomJob': create_custom_job, 'GetCustomJob': get_custom_job, 'ListCustomJobs': list_custom_jobs,
            'CancelCustomJob': cancel_custom_job, 'DeleteCustomJob': delete_custom_job}


# ---- Cloud Logging ------------------------------------------------------------------------------
ENTRIES_FIELDS = {'resourceNames', 'resource_names', 'projectIds', 'filter', 'orderBy', 'order_by', 'pageSize',
                  'page_size', 'pageToken', 'page_token'}


def entries_list(body):
    """entries:list over the jobs' entries; the filter's terms this fake understands:
    resource.type="ml_job", resource.labels.job_id="ID", timestamp>="T" (ANDed)."""
    try:
        p = json.loads(body or b'{}')
    except ValueError as e:
        raise ApiError(400, 'Invalid JSON payload received. %s' % e)
    if not isinstance(p, dict):
        raise ApiError(400, 'Invalid JSON payload received. Expected an object.')
    unknown = sorted(set(p) - ENTRIES_FIELDS)
    if unknown:
        raise ApiError(400, 'Invalid JSON payload received. Unknown name "%s": Cannot find field.' % unknown[0])
    names = p.get('resourceNames') or p.get('resource_names') or []
    if not names or not all(re.fullmatch(r'projects/[^/]+', n) for n in names):
        raise ApiError(400, 'resourceNames must name projects/PROJECT_ID (this fake serves projects only): %s' % names)
    projects = {n.split('/')[1] for n in names}
    terms = [t.strip() for t in re.split(r'\s+AND\s+', p.get('filter', '')) if t.strip()]
    job_id, since = None, ''
    for t in terms:
        m = re.fullmatch(r'([a-zA-Z_.]+)\s*(=|>=|>)\s*"?([^"]*)"?', t)
        if not m:
            raise ApiError(400, 'vertex_fake does not understand the filter term: %s' % t)
        key, op, value = m.groups()
        if key == 'resource.type' and op == '=':
            if value != 'ml_job':
                return {}
        elif key == 'resource.labels.job_id' and op == '=':
            job_id = value
        elif key == 'timestamp' and op in ('>=', '>'):
            since = value
        else:
            raise ApiError(400, 'vertex_fake does not understand the filter term: %s' % t)
    order = (p.get('orderBy') or p.get('order_by') or 'timestamp asc').strip()
    if order not in ('timestamp asc', 'timestamp desc', 'timestamp'):
        raise ApiError(400, 'Invalid orderBy: %s' % order)
    size = int(p.get('pageSize') or p.get('page_size') or 50)
    if size < 0 or size > 1000:
        raise ApiError(400, 'pageSize must be between 0 and 1000')
    with lock:
        found = [dict(e) for j in jobs.values() if j.project in projects and (not job_id or j.id == job_id)
                 for e in j.entries if e['timestamp'] >= since]
    found.sort(key=lambda e: (e['timestamp'], e['insertId']), reverse=order == 'timestamp desc')
    start = int(p.get('pageToken') or p.get('page_token') or 0)
    out = {'entries': found[start:start + size]} if found[start:start + size] else {}
    if start + size < len(found):
        out['nextPageToken'] = str(start + size)
    return out


# ---- HTTP --------------------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj):
        body = (obj if isinstance(obj, str) else json.dumps(obj)).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json; charset=UTF-8')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.entry['status'] = status

    def error(self, e):
        self.entry['error'] = e.grpc_status
        self.entry['message'] = e.message
        err = {'code': e.status, 'message': e.message, 'status': e.grpc_status}
        if e.details:
            err['details'] = e.details
        self.reply(e.status, {'error': err})

    def do_GET(self):
        self.handle_any('GET')

    def do_POST(self):
        self.handle_any('POST')

    def do_DELETE(self):
        self.handle_any('DELETE')

    def do_PATCH(self):
        self.handle_any('PATCH')

    def handle_any(self, method):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        url = urllib.parse.urlsplit(self.path)
        self.entry = {}
        if url.path.startswith('/_/'):
            return self.control(method, url.path, body)
        self.entry = {'method': method, 'path': url.path}
        with lock:
            calls.append(self.entry)
        try:
            self.entry['token'] = check_token(self)
            self.api(method, url, body)
        except ApiError as e:
            self.error(e)

    def control(self, method, path, body):
        if method == 'GET' and path == '/_/log':
            with lock:
                return self.reply(200, calls)
        if method == 'GET' and path == '/_/jobs':
            with lock:
                return self.reply(200, [j.summary() for j in jobs.values()])
        if method == 'POST' and path == '/_/script':
            try:
                new = json.loads(body)
            except ValueError as e:
                return self.error(ApiError(400, 'bad JSON: %s' % e))
            with lock:
                for r in new if isinstance(new, list) else [new]:
                    for kind in ('throttle', 'internal_error', 'unavailable'):
                        if r.get(kind):
                            op_faults.append({'kind': kind, 'left': int(r[kind]), 'op': r.get('op')})
                    if 'job' in r:
                        rules.append(r)
            return self.reply(200, {'rules': len(rules), 'faults': len(op_faults)})
        self.error(ApiError(404, 'no such control route'))

    def fault(self, rpc):
        with lock:
            f = next((f for f in op_faults if f['left'] > 0 and f['op'] in (None, rpc)), None)
            if f:
                f['left'] -= 1
        if not f:
            return
        if f['kind'] == 'throttle':
            raise ApiError(429, 'Quota exceeded for aiplatform.googleapis.com/%s requests per minute.' % rpc)
        if f['kind'] == 'unavailable':
            raise ApiError(503, 'The service is currently unavailable.')
        raise ApiError(500, 'Internal error encountered.')

    def api(self, method, url, body):
        if method == 'POST' and url.path == '/v2/entries:list':
            self.entry['rpc'] = 'ListLogEntries'
            self.fault('ListLogEntries')
            return self.reply(200, entries_list(body))
        rpc, req, ints = decode(method, url, body, self.headers.get('Content-Type'), self.entry, self.fault)
        answer = HANDLERS[rpc](req)
        self.reply(200, json_format.MessageToJson(answer, use_integers_for_enums=ints, descriptor_pool=args.pool,
                                                  indent=None))


def decode(method, url, body, content_type, entry, fault=None):
    """A JobService call as Google's HTTP transcoding reads it: the route of its google.api.http
    annotation, the body parsed strictly into the request (or its body field), path variables and
    query parameters bound, then google.api.field_behavior. (rpc, request, integer enums wanted)."""
    for verb, regex, rpc, body_field, cls, fields in ROUTES:
        m = regex.match(url.path)
        if verb == method and m:
            break
    else:
        raise ApiError(404, 'The requested URL %s was not found on this server (method %s).' % (url.path, method),
                       grpc_status='NOT_FOUND')
    entry['rpc'] = rpc
    if fault:
        fault(rpc)
    req = cls()
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    ints = False
    for k, vs in query.items():
        if k in SYSTEM_PARAMS:
            ints = ints or any('enum-encoding=int' in v for v in vs)
            continue
        if body_field == '*':
            raise ApiError(400, 'Invalid JSON payload received. Unknown name "%s": Cannot bind query parameter.' % k)
        set_field(req, k, vs[-1])
    if body_field:
        ctype = (content_type or '').split(';')[0].strip()
        if body and ctype != 'application/json':
            raise ApiError(400, 'Content-Type %r is not application/json' % ctype)
        text = body.decode('utf-8', 'replace') if body else '{}'
        target = req if body_field == '*' else getattr(req, body_field)
        parse_into(target, text, body_field if body_field != '*' else '')
    elif body and body.strip() not in (b'', b'{}'):
        raise ApiError(400, 'Invalid JSON payload received. %s takes no body.' % rpc)
    for i, f in enumerate(fields):
        set_field(req, f, urllib.parse.unquote(m.group('f%d' % i)))
    errors = []
    behaviors(req, '', errors)
    entry['validation'] = 'ok' if not errors else [f for f, _ in errors]
    if errors:
        raise field_errors(errors)
    return rpc, req, ints


def check_requests(path):
    """--check: the requests of a `stepop submit --dry-run` ({"requests": [{"method", "url",
    "headers", "body"}]}, possibly under "requests") decoded as the server decodes them; prints
    "ok RPC" or "refused: ..." for each; false when one is refused."""
    with open(path) as f:
        d = json.load(f)
    while isinstance(d, dict) and 'requests' in d:
        d = d['requests']
    good = True
    for r in d:
        url = urllib.parse.urlsplit(r['url'])
        body = r.get('body')
        raw = json.dumps(body).encode() if body is not None else b''
        headers = {k.lower(): v for k, v in (r.get('headers') or {}).items()}
        try:
            if url.path == '/v2/entries:list':
                entries_list(raw)
                rpc = 'ListLogEntries'
            else:
                rpc, _, _ = decode(r['method'], url, raw, headers.get('content-type', 'application/json'), {})
            print('ok %s %s' % (rpc, r['url']))
        except ApiError as e:
            good = False
            print('refused: %s %s: %d %s: %s' % (r['method'], r['url'], e.status, e.grpc_status, e.message))
    return good


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
    global args
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port-file', required=True)
    p.add_argument('--podman-dir', required=True, help="holds Podman's root/, run/ and tmp/ (tests/lib.sh's)")
    p.add_argument('--jobs-dir', required=True)
    p.add_argument('--proto-cache', default=os.path.join(here, '../../build/protos'),
                   help='where the compiled descriptor set is kept')
    p.add_argument('--node-modules', default=os.path.join(here, 'node_modules'))
    p.add_argument('--tokens', default='', help='the accepted bearer tokens: a token per line or JSON lines')
    p.add_argument('--tokeninfo', default='', help="a tokeninfo URL to check bearer tokens with")
    p.add_argument('--container-label', action='append', default=[], help='KEY=VALUE on every container')
    p.add_argument('--container-env', action='append', default=[], help='KEY=VALUE in every container')
    p.add_argument('--machine-memory', action='append', default=[], help='TYPE=BYTES, over the table')
    p.add_argument('--stop-grace', type=int, default=30, help='seconds from SIGTERM to SIGKILL')
    p.add_argument('--start-delay', type=float, default=0.3, help='seconds in QUEUED and in PENDING')
    p.add_argument('--compile-only', action='store_true', help='build the descriptor set and exit')
    p.add_argument('--check', metavar='DRY_RUN_JSON', help="check a dry run's requests as the server would, and exit")
    args = p.parse_args()
    args.podman_dir = os.path.abspath(args.podman_dir)
    args.jobs_dir = os.path.abspath(args.jobs_dir)
    os.makedirs(args.jobs_dir, exist_ok=True)
    load_protos()
    if args.compile_only:
        return
    if args.check:
        sys.exit(0 if check_requests(args.check) else 1)
    load_tokens()
    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    srv = Server(('127.0.0.1', 0), Handler)
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
