#!/usr/bin/env python3
"""A SageMaker training-job fake that runs the training container with Podman, for the tests.

The API is taken from botocore's own service models (Debian's python3-botocore): SageMaker
(JSON 1.1, X-Amz-Target SageMaker.<Op>) and CloudWatch Logs (Logs_20140328.<Op>) on one port.
Every request is checked as AWS checks it:
- SigV4, recomputed with botocore's SigV4Auth for the service the target belongs to (sagemaker or
  logs) and the region in the credential scope, from keys in --keys (JSON lines {"akid",
  "secret", "token", "expires"}, re-read when an unknown key shows up, as s3proxy.py does).
- The body against the operation's input shape: botocore's ParamValidator (required members,
  types, unknown members) and then the model's constraints that ParamValidator leaves out
  (string length and pattern, enums, list and map sizes, number ranges), answered in the
  service's own words ("1 validation error detected: Value '...' at 'trainingJobName' failed to
  satisfy constraint: ...").
- Every answer this fake builds is validated against the output shape too; an invalid one is a
  bug here and answers 500 with the report (and is printed to stderr).

Operations: CreateTrainingJob, DescribeTrainingJob, StopTrainingJob, ListTags, ListTrainingJobs
(newest first, MaxResults, no filters: what `stepop doctor` asks);
DescribeLogStreams and GetLogEvents on the log group /aws/sagemaker/TrainingJobs, streams
<job>/algo-1-<epoch>, one per container start. Anything else: UnknownOperationException.

A job runs its container with Podman (storage under --podman-dir, as tests/lib.sh): image
TrainingImage, entrypoint ContainerEntrypoint with ContainerArguments (without an entrypoint the
image's own runs with the argument "train", as SageMaker does), environment Environment plus
TRAINING_JOB_NAME, TRAINING_JOB_ARN, AWS_REGION and the role's credentials the way a container
gets them (AWS_CONTAINER_CREDENTIALS_FULL_URI = --container-credentials-url, with
AWS_CONTAINER_AUTHORIZATION_TOKEN = --container-credentials-token; SageMaker itself uses a
link-local relative URI, unreachable here), plus --container-env (the test network's endpoints,
which real SageMaker would not need). Host network (the tests' servers are on loopback), a
memory limit from MEMORY below or --instance-memory, /opt/ml/output and (with CheckpointConfig)
the checkpoint LocalPath bind-mounted from a directory per job under --jobs-dir. Not emulated:
input channels, the upload of checkpoints and of the model to S3, warm pools, VPCs, KMS,
distributed training (one instance always).

Statuses follow DescribeTrainingJob's documentation: SecondaryStatus Starting -> Downloading ->
Training -> Uploading -> Completed (TrainingJobStatus Completed); a non-zero exit is Failed with
"AlgorithmError: <the container's /opt/ml/output/failure>, exit code: N"; an OOM kill is Failed
with SageMaker's OutOfMemoryError reason; a container whose entrypoint cannot be run is Failed
without an exit code, the runtime's error as its log stream's lines; StopTrainingJob is Stopping then Stopped (SIGTERM,
SIGKILL after --stop-grace, 120 s as SageMaker); MaxRuntimeInSeconds passed is Stopped with
SecondaryStatus MaxRuntimeExceeded; a managed spot job whose total time passes
MaxWaitTimeInSeconds is Stopped with MaxWaitTimeExceeded.

Control endpoints (unsigned, under /_/):
- POST /_/script: a JSON rule or list of rules.
  {"job": NAME or "*", "capacity_error": true}: the job fails while Starting with SageMaker's
  CapacityError reason, its container never started.
  {"job": NAME or "*", "spot_interrupt_after": SECONDS, "interruptions": N (1)}: the container
  is stopped SECONDS after it started (SIGTERM, then SIGKILL after the grace), SecondaryStatus
  Interrupted then Restarting, and a new container with the same environment starts, N times
  (a managed spot job's restart).
  {"throttle": N, "op": OP (any)}: the next N calls answer 400 ThrottlingException.
  {"internal_error": N, "op": OP (any)}: the next N calls answer 500 InternalFailure.
  A job rule applies to jobs created after it.
- GET /_/log: the calls seen ({"op", "akid", "status", "error", "validation"}).
- GET /_/jobs: the jobs ({"name", "status", "secondary", "failure_reason", "containers", "env",
  "streams"}).
On SIGTERM the fake removes the containers it started and exits.
"""
import argparse
import calendar
import hashlib
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unicodedata

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.validate import ParamValidator

LOG_GROUP = '/aws/sagemaker/TrainingJobs'
# Memory of a few instance types (GiB, from the instance type pages); others get DEFAULT_MEMORY.
MEMORY = {'ml.m5.large': 8, 'ml.m5.xlarge': 16, 'ml.m5.2xlarge': 32, 'ml.c5.xlarge': 8, 'ml.c5.2xlarge': 16,
          'ml.g4dn.xlarge': 16, 'ml.g5.xlarge': 16, 'ml.g5.2xlarge': 32, 'ml.p3.2xlarge': 61}
DEFAULT_MEMORY = 16
CAPACITY = ('CapacityError: Unable to provision requested ML compute capacity. Please retry using a different '
            'ML instance type.')
# The fake's own words (not checked against SageMaker) when the container's entrypoint cannot
# be run: no exit code, the runtime's error in the job's log stream.
CANNOT_START = 'AlgorithmError: the training container could not be started; see the job\'s log stream'
OOM = ('OutOfMemoryError: Please use an instance type with more memory, or reduce the size of job data '
       'processed on an instance.')

args = None
lock = threading.Lock()
calls = []
rules = []          # job rules (dicts), consumed per job at creation
op_faults = []      # [{"kind": "throttle"|"internal_error", "left": N, "op": OP or None}]
jobs = {}
keys = {}
containers = set()  # every container started, removed at exit
stopping = threading.Event()

session = botocore.session.get_session()
MODELS = {'SageMaker': session.get_service_model('sagemaker'), 'Logs_20140328': session.get_service_model('logs')}
SIGNING = {'SageMaker': 'sagemaker', 'Logs_20140328': 'logs'}
OPS = {'SageMaker': {'CreateTrainingJob', 'DescribeTrainingJob', 'StopTrainingJob', 'ListTags', 'ListTrainingJobs'},
       'Logs_20140328': {'DescribeLogStreams', 'GetLogEvents'}}


class CannotStart(Exception):
    """The training container could not be started (its entrypoint could not be run)."""


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message):
    return ApiError(400, 'ValidationException', message)


# ---- the model's constraints ---------------------------------------------------------------------
def java_pattern(pattern, value):
    """The model's patterns are Java regular expressions, matched whole. Python's re has no
    \\p{..} classes: the value's non-ASCII letters, digits and spaces are mapped to ASCII ones of
    the same Unicode category and the classes to those ASCII ranges."""
    if '\\p{' in pattern:
        pattern = pattern.replace('\\p{L}', 'a-zA-Z').replace('\\p{N}', '0-9').replace('\\p{Z}', ' ')
        out = []
        for c in value:
            cat = unicodedata.category(c) if ord(c) > 127 else ''
            out.append({'L': 'a', 'N': '0', 'Z': ' '}.get(cat[:1], c))
        value = ''.join(out)
    return re.fullmatch(pattern, value) is not None


def lower_camel(name):
    return name[:1].lower() + name[1:]


def show(value):
    return json.dumps(value) if not isinstance(value, str) else value


def constraints(value, shape, path, errors):
    """The constraints ParamValidator does not check, in the words of AWS's validation errors."""
    if value is None:
        return
    m = shape.metadata
    where = "Value '%s' at '%s' failed to satisfy constraint: " % (show(value), path)
    t = shape.type_name
    if t == 'structure':
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append("Value null at '%s' failed to satisfy constraint: Member must not be null"
                              % (path + '.' + lower_camel(name) if path else lower_camel(name)))
        for name, v in value.items():
            if name in shape.members:
                constraints(v, shape.members[name], path + '.' + lower_camel(name) if path else lower_camel(name),
                            errors)
        return
    if t == 'list':
        size = len(value)
        for i, v in enumerate(value):
            constraints(v, shape.member, '%s.%d.member' % (path, i + 1), errors)
    elif t == 'map':
        size = len(value)
        for k, v in value.items():
            constraints(k, shape.key, '%s.%s.key' % (path, k), errors)
            constraints(v, shape.value, '%s.%s.value' % (path, k), errors)
    elif t == 'string':
        size = len(value)
        if shape.enum and value not in shape.enum:
            errors.append(where + 'Member must satisfy enum value set: [%s]' % ', '.join(shape.enum))
        if 'pattern' in m and not java_pattern(m['pattern'], value):
            errors.append(where + 'Member must satisfy regular expression pattern: %s' % m['pattern'])
    elif t in ('integer', 'long', 'float', 'double'):
        if 'min' in m and value < m['min']:
            errors.append(where + 'Member must have value greater than or equal to %s' % m['min'])
        if 'max' in m and value > m['max']:
            errors.append(where + 'Member must have value less than or equal to %s' % m['max'])
        return
    else:
        return
    if 'min' in m and size < m['min']:
        errors.append(where + 'Member must have length greater than or equal to %s' % m['min'])
    if 'max' in m and size > m['max']:
        errors.append(where + 'Member must have length less than or equal to %s' % m['max'])


def validate(params, shape):
    """The validation errors of PARAMS against SHAPE, as the service words them; None when valid."""
    errors = []
    try:
        constraints(params, shape, '', errors)
    except (TypeError, AttributeError):
        errors = []  # a value of the wrong type, which ParamValidator words below
    report = ParamValidator().validate(params, shape)
    if errors:
        return '%d validation error%s detected: %s' % (len(errors), '' if len(errors) == 1 else 's',
                                                       '; '.join(errors))
    if report.has_errors():
        return report.generate_report()
    return None


def check_output(op, answer):
    """This fake's own answer against the output shape: a mismatch is a bug here."""
    shape = op.output_shape
    if shape is None:
        return
    problem = validate(json.loads(json.dumps(answer)), shape) if answer else None
    if problem:
        print('sagemaker_fake: invalid %s answer: %s\n%s' % (op.name, problem, json.dumps(answer)), file=sys.stderr)
        raise ApiError(500, 'InternalFailure', 'sagemaker_fake produced an invalid %s answer: %s' % (op.name, problem))


# ---- SigV4 -------------------------------------------------------------------------------------
def load_keys():
    if not os.path.exists(args.keys):
        return
    with open(args.keys) as f:
        for line in f:
            if line.strip():
                k = json.loads(line)
                keys[k['akid']] = k


def verify(handler, service, body):
    auth = handler.headers.get('Authorization')
    if not auth:
        raise ApiError(403, 'MissingAuthenticationTokenException', 'Missing Authentication Token')
    if not auth.startswith('AWS4-HMAC-SHA256 '):
        raise ApiError(403, 'IncompleteSignatureException', 'Unsupported Authorization algorithm')
    fields = dict(p.strip().split('=', 1) for p in auth[len('AWS4-HMAC-SHA256 '):].split(',') if '=' in p)
    cred, signed, sig = fields.get('Credential', ''), fields.get('SignedHeaders', ''), fields.get('Signature', '')
    amz_date, token = handler.headers.get('X-Amz-Date', ''), handler.headers.get('X-Amz-Security-Token')
    parts = cred.split('/')
    if len(parts) != 5 or parts[4] != 'aws4_request':
        raise ApiError(403, 'IncompleteSignatureException', 'Credential should be scoped to a valid region.')
    akid, day, region, scope_service = parts[0], parts[1], parts[2], parts[3]
    handler.entry['akid'] = akid
    if akid not in keys:
        load_keys()
    k = keys.get(akid)
    if not k:
        raise ApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
    if (k.get('token') or None) != (token or None):
        raise ApiError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.')
    if k.get('expires') and time.time() > k['expires']:
        raise ApiError(400, 'ExpiredTokenException', 'The security token included in the request is expired')
    try:
        t = calendar.timegm(time.strptime(amz_date, '%Y%m%dT%H%M%SZ'))
    except ValueError:
        raise ApiError(400, 'IncompleteSignatureException', 'Authorization header requires existence of either a '
                       "'X-Amz-Date' or a 'Date' header.")
    if abs(time.time() - t) > 300:
        raise ApiError(400, 'InvalidSignatureException', 'Signature expired: %s is now earlier or later than 5 minutes '
                       'from the current time.' % amz_date)
    if day != amz_date[:8] or scope_service != service:
        raise ApiError(403, 'InvalidSignatureException', "Credential should be scoped to correct service: '%s'. "
                       % service)
    names = signed.split(';')
    if 'host' not in names:
        raise ApiError(403, 'InvalidSignatureException', "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    headers = {}
    for name in names:
        if handler.headers.get(name) is None:
            raise ApiError(403, 'InvalidSignatureException', 'The request signature we calculated does not match '
                           'the signature you provided: signed header %s is missing.' % name)
        headers[name] = ','.join(handler.headers.get_all(name))
    req = AWSRequest(method='POST', url='http://%s%s' % (handler.headers.get('Host'), handler.path), headers=headers,
                     data=body)
    req.context['timestamp'] = amz_date
    signer = SigV4Auth(Credentials(akid, k['secret'], k.get('token')), service, region)
    handler.entry['region'] = region
    expected = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
    if expected != sig:
        raise ApiError(403, 'InvalidSignatureException', 'The request signature we calculated does not match the '
                       'signature you provided. Check your AWS Secret Access Key and signing method. Consult the '
                       'service documentation for details.')
    return region


# ---- Podman ------------------------------------------------------------------------------------
def podman(*a, check=False, timeout=None):
    d = args.podman_dir
    # In the jobs directory: conmon writes a file named "oom" into its working directory when a
    # container is OOM-killed, which would land in the checkout the tests run from.
    r = subprocess.run(['podman', '--root', d + '/root', '--runroot', d + '/run', '--tmpdir', d + '/tmp'] + list(a),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, cwd=args.jobs_dir)
    if check and r.returncode != 0:
        raise OSError('podman %s: %s' % (a[0], r.stderr.strip()[-500:]))
    return r


def podman_cmd(*a):
    d = args.podman_dir
    return ['podman', '--root', d + '/root', '--runroot', d + '/run', '--tmpdir', d + '/tmp'] + list(a)


def oom_in_dmesg(cid):
    """Podman on cgroup v1 may report OOMKilled=false after a cgroup OOM; the kernel log names it."""
    try:
        out = subprocess.run(['dmesg'], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return False
    return any('oom_memcg=' in line and 'libpod-' + cid in line for line in out.splitlines())


def memory_bytes(instance_type):
    for spec in args.instance_memory:
        name, _, size = spec.partition('=')
        if name == instance_type:
            return int(size)
    return MEMORY.get(instance_type, DEFAULT_MEMORY) << 30


# ---- jobs --------------------------------------------------------------------------------------
class Job:
    def __init__(self, req, region):
        self.req = req
        self.name = req['TrainingJobName']
        self.region = region
        self.arn = 'arn:aws:sagemaker:%s:%s:training-job/%s' % (region, args.account, self.name.lower())
        self.created = time.time()
        self.modified = self.created
        self.status, self.secondary, self.failure = 'InProgress', 'Starting', None
        self.transitions = []
        self.training_start = self.training_end = None
        self.run_seconds = 0.0      # container time across restarts, against MaxRuntimeInSeconds
        self.stop_requested = False
        self.cid = None
        self.cids = []
        self.streams = []           # {"name", "created", "events": [{"timestamp", "message", "ingestionTime"}]}
        self.env = {}
        self.dir = os.path.join(args.jobs_dir, self.name)
        self.rules = [dict(r) for r in rules if r.get('job') in ('*', self.name)]
        self.move('Starting', 'Starting the training job')

    def move(self, secondary, message, status=None):
        """A SecondaryStatus transition (the previous one ends now), made with the lock held."""
        now = time.time()
        if self.transitions and 'EndTime' not in self.transitions[-1]:
            self.transitions[-1]['EndTime'] = now
        self.transitions.append({'Status': secondary, 'StartTime': now, 'StatusMessage': message})
        self.secondary = secondary
        if status:
            self.status = status
        self.modified = now

    def finish(self, status, secondary, message, failure=None):
        with lock:
            self.move(secondary, message, status)
            self.transitions[-1]['EndTime'] = self.modified
            self.failure = failure
            if self.training_start and not self.training_end:
                self.training_end = self.modified

    def rule(self, key):
        return next((r for r in self.rules if r.get(key)), None)

    def describe(self):
        req = self.req
        shown = MODELS['SageMaker'].operation_model('DescribeTrainingJob').output_shape.members
        d = {k: v for k, v in req.items() if k in shown}
        d.update({'TrainingJobArn': self.arn, 'TrainingJobStatus': self.status, 'SecondaryStatus': self.secondary,
                  'CreationTime': self.created, 'LastModifiedTime': self.modified,
                  'SecondaryStatusTransitions': [dict(t) for t in self.transitions],
                  'ModelArtifacts': {'S3ModelArtifacts': '%s/%s/output/model.tar.gz'
                                     % (req['OutputDataConfig']['S3OutputPath'].rstrip('/'), self.name)}})
        if self.failure:
            d['FailureReason'] = self.failure
        if self.training_start:
            d['TrainingStartTime'] = self.training_start
        if self.training_end:
            d['TrainingEndTime'] = self.training_end
            d['TrainingTimeInSeconds'] = max(1, int(self.run_seconds))
            d['BillableTimeInSeconds'] = max(1, int(self.run_seconds))
        return d

    def summary(self):
        return {'name': self.name, 'status': self.status, 'secondary': self.secondary, 'failure_reason': self.failure,
                'containers': list(self.cids), 'env': self.env, 'streams': [s['name'] for s in self.streams]}

    # -- the job's life, in its own thread
    def run(self):
        try:
            self.life()
        except Exception as e:  # a bug here must show, not leave the job InProgress for ever
            print('sagemaker_fake: job %s: %s: %s' % (self.name, type(e).__name__, e), file=sys.stderr)
            self.finish('Failed', 'Failed', 'Training job failed',
                        'InternalServerError: We encountered an internal error. Please try again.')

    def life(self):
        req = self.req
        time.sleep(args.start_delay)
        if self.rule('capacity_error'):
            return self.finish('Failed', 'Failed', 'Training job failed', CAPACITY)
        spot = req.get('EnableManagedSpotTraining')
        max_run = (req.get('StoppingCondition') or {}).get('MaxRuntimeInSeconds', 86400)
        max_wait = (req.get('StoppingCondition') or {}).get('MaxWaitTimeInSeconds')
        interrupts = self.rule('spot_interrupt_after')
        left = interrupts.get('interruptions', 1) if interrupts else 0
        while True:
            with lock:
                if self.stop_requested:
                    break
                self.move('Downloading', 'Downloading input data')
            time.sleep(args.start_delay)
            if podman('image', 'exists', req['AlgorithmSpecification']['TrainingImage']).returncode != 0:
                return self.finish('Failed', 'Failed', 'Training job failed',
                                   'ClientError: Failed to invoke sagemaker:CreateTrainingJob. Error Details: '
                                   'Cannot find repository for image %s'
                                   % req['AlgorithmSpecification']['TrainingImage'])
            interrupt_at = interrupts['spot_interrupt_after'] if left > 0 else None
            with lock:
                if self.stop_requested:
                    break
            # Without the lock: podman run takes seconds, and calls go on meanwhile. A stop that
            # comes now is seen by wait() at once.
            try:
                self.start_container()
            except CannotStart:
                return self.finish('Failed', 'Failed', 'Training job failed', CANNOT_START)
            with lock:
                if not self.stop_requested:
                    self.move('Training', 'Training image download completed. Training in progress.')
                if not self.training_start:
                    self.training_start = time.time()
            outcome, code, oom = self.wait(max_run, interrupt_at, max_wait if spot else None)
            if outcome == 'interrupted':
                left -= 1
                with lock:
                    self.move('Interrupted', 'Training job interrupted: the spot instance was reclaimed')
                time.sleep(args.start_delay)
                with lock:
                    self.move('Restarting', 'Restarting the training job')
                continue
            if outcome == 'stopped':
                break
            if outcome == 'max_runtime':
                return self.finish('Stopped', 'MaxRuntimeExceeded',
                                   'Training job stopped: it exceeded MaxRuntimeInSeconds (%d)' % max_run)
            if outcome == 'max_wait':
                return self.finish('Stopped', 'MaxWaitTimeExceeded',
                                   'Training job stopped: it exceeded MaxWaitTimeInSeconds (%d)' % max_wait)
            if code == 0:
                with lock:
                    self.move('Uploading', 'Uploading generated training model')
                return self.finish('Completed', 'Completed', 'Training job completed')
            if oom:
                return self.finish('Failed', 'Failed', 'Training job failed', OOM)
            failure = ''
            try:
                with open(os.path.join(self.dir, 'output', 'failure'), errors='replace') as f:
                    failure = f.read(900).strip()
            except OSError:
                pass
            return self.finish('Failed', 'Failed', 'Training job failed',
                               'AlgorithmError: %s, exit code: %d' % (failure, code))
        self.finish('Stopped', 'Stopped', 'Training job stopped')

    def start_container(self):
        req, spec = self.req, self.req['AlgorithmSpecification']
        env = dict(req.get('Environment') or {})
        for kv in args.container_env:
            k, _, v = kv.partition('=')
            env[k] = v
        env.update({'TRAINING_JOB_NAME': self.name, 'TRAINING_JOB_ARN': self.arn, 'AWS_REGION': self.region})
        if args.container_credentials_url:
            env['AWS_CONTAINER_CREDENTIALS_FULL_URI'] = args.container_credentials_url
            if args.container_credentials_token:
                env['AWS_CONTAINER_AUTHORIZATION_TOKEN'] = args.container_credentials_token
        with lock:
            self.env = env
        os.makedirs(os.path.join(self.dir, 'output'), exist_ok=True)
        mem = str(memory_bytes(req['ResourceConfig'].get('InstanceType', '')))
        a = ['run', '-d', '--name', 'sagemaker-%s-%d' % (self.name, len(self.cids)), '--pull', 'never',
             '--log-driver', 'k8s-file', '--network', 'host', '--hostname', 'algo-1', '--memory', mem,
             '--memory-swap', mem, '--label', 'sagemaker-fake.job=' + self.name,
             '-v', '%s:/opt/ml/output' % os.path.join(self.dir, 'output')]
        for lb in args.container_label:
            a += ['--label', lb]
        if req.get('CheckpointConfig'):
            local = req['CheckpointConfig'].get('LocalPath') or '/opt/ml/checkpoints'
            os.makedirs(os.path.join(self.dir, 'checkpoints'), exist_ok=True)
            a += ['-v', '%s:%s' % (os.path.join(self.dir, 'checkpoints'), local)]
        for k, v in sorted(env.items()):
            a += ['--env', '%s=%s' % (k, v)]
        if spec.get('ContainerEntrypoint'):
            a += ['--entrypoint', json.dumps(spec['ContainerEntrypoint']), spec['TrainingImage']]
            a += spec.get('ContainerArguments') or []
        else:
            a += [spec['TrainingImage'], 'train']
        r = podman(*a)
        cid = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else None
        stream = {'name': '%s/algo-1-%d' % (self.name, int(time.time())), 'created': time.time(), 'events': []}
        if not cid:
            # The container was created and its entrypoint could not be run (an image without
            # it): the runtime's error is the stream's only line, as the container's output.
            podman('rm', '-f', '-t', '0', a[3])
            now = int(time.time() * 1000)
            stream['events'] = [{'timestamp': now, 'message': line, 'ingestionTime': now}
                                for line in r.stderr.strip().splitlines()[-5:]]
            with lock:
                self.streams.append(stream)
            raise CannotStart(r.stderr.strip()[-300:])
        with lock:
            containers.add(cid)
            self.cid = cid
            self.cids.append(cid)
            if any(s['name'] == stream['name'] for s in self.streams):
                stream['name'] += '-%d' % len(self.streams)
            self.streams.append(stream)
        threading.Thread(target=self.pump, args=(cid, stream), daemon=True).start()

    def pump(self, cid, stream):
        """The container's output, line by line, as the stream's events."""
        p = subprocess.Popen(podman_cmd('logs', '-f', cid), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in p.stdout:
            now = int(time.time() * 1000)
            with lock:
                stream['events'].append({'timestamp': now, 'message': line.decode('utf-8', 'replace').rstrip('\n'),
                                         'ingestionTime': now})
        p.wait()

    def wait(self, max_run, interrupt_at, max_wait):
        """Follows the container to its end: (outcome, exit code, OOM-killed)."""
        cid = self.cid
        started = time.time()
        base = self.run_seconds
        waiter = subprocess.Popen(podman_cmd('wait', cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        outcome = None
        while waiter.poll() is None:
            time.sleep(0.2)
            now = time.time()
            self.run_seconds = base + now - started
            if outcome:
                continue
            with lock:
                if self.stop_requested:
                    outcome = 'stopped'
            if not outcome and self.run_seconds > max_run:
                outcome = 'max_runtime'
            if not outcome and max_wait and now - self.created > max_wait:
                outcome = 'max_wait'
            if not outcome and interrupt_at is not None and now - started >= interrupt_at:
                outcome = 'interrupted'
            if outcome:
                threading.Thread(target=podman, args=('stop', '-t', str(args.stop_grace), cid), daemon=True).start()
        self.run_seconds = base + time.time() - started
        r = podman('inspect', '--format', 'json', cid)
        try:
            st = json.loads(r.stdout)[0]['State']
        except (ValueError, IndexError, KeyError):
            st = {'ExitCode': 137, 'OOMKilled': False}
        code = int(st.get('ExitCode', 0))
        oom = bool(st.get('OOMKilled')) or (code == 137 and oom_in_dmesg(cid))
        with lock:
            self.cid = None
            if not outcome and self.stop_requested:
                outcome = 'stopped'
        time.sleep(0.3)  # lets the log pump read the last lines before the status says the job ended
        return outcome or 'exited', code, oom


# ---- the operations ----------------------------------------------------------------------------
def get_job(name):
    j = jobs.get(name)
    if not j:
        raise invalid('Requested resource not found.')
    return j


def create_training_job(p, region):
    # The rules SageMaker adds to the model's for managed spot training.
    sc = p['StoppingCondition']
    if 'MaxWaitTimeInSeconds' in sc and not p.get('EnableManagedSpotTraining'):
        raise invalid('Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to '
                      'true')
    if p.get('EnableManagedSpotTraining') and sc.get('MaxWaitTimeInSeconds', 0) < sc.get('MaxRuntimeInSeconds', 86400):
        raise invalid('Invalid MaxWaitTimeInSeconds. It must be present and be greater than or equal to '
                      'MaxRuntimeInSeconds')
    with lock:
        if p['TrainingJobName'] in jobs:
            j = jobs[p['TrainingJobName']]
            raise ApiError(400, 'ResourceInUse', 'Training job names must be unique within an AWS account and region, '
                           'and a training job with this name already exists (%s)' % j.arn)
        j = Job(p, region)
        jobs[j.name] = j
    threading.Thread(target=j.run, daemon=True).start()
    return {'TrainingJobArn': j.arn}


def describe_training_job(p, region):
    with lock:
        return get_job(p['TrainingJobName']).describe()


def stop_training_job(p, region):
    with lock:
        j = get_job(p['TrainingJobName'])
        if j.status != 'InProgress':
            raise invalid('The request was rejected because the training job is in status %s.' % j.status)
        j.stop_requested = True
        j.move('Stopping', 'Stopping the training job', 'Stopping')
    return {}


def list_tags(p, region):
    with lock:
        j = next((j for j in jobs.values() if j.arn == p['ResourceArn']), None)
        if not j:
            raise invalid('Requested resource not found.')
        tags = list(j.req.get('Tags') or [])
    start = int(p.get('NextToken') or 0)
    n = p.get('MaxResults', 50)
    out = {'Tags': tags[start:start + n]}
    if start + n < len(tags):
        out['NextToken'] = str(start + n)
    return out


def list_training_jobs(p, region):
    with lock:
        newest = sorted(jobs.values(), key=lambda j: j.created, reverse=True)[:p.get('MaxResults', 10)]
        return {'TrainingJobSummaries': [{'TrainingJobName': j.name, 'TrainingJobArn': j.arn,
                                          'CreationTime': j.created, 'LastModifiedTime': j.modified,
                                          'TrainingJobStatus': j.status} for j in newest]}


def all_streams():
    return [s for j in jobs.values() for s in j.streams]


def log_group(p):
    g = p.get('logGroupName') or (p.get('logGroupIdentifier') or '').split(':log-group:')[-1]
    if g != LOG_GROUP:
        raise ApiError(400, 'ResourceNotFoundException', 'The specified log group does not exist.')


def describe_log_streams(p, region):
    log_group(p)
    order = p.get('orderBy', 'LogStreamName')
    if order == 'LastEventTime' and p.get('logStreamNamePrefix'):
        raise ApiError(400, 'InvalidParameterException', 'Cannot order by LastEventTime with a logStreamNamePrefix.')
    with lock:
        found = []
        for s in all_streams():
            if not s['name'].startswith(p.get('logStreamNamePrefix', '')):
                continue
            d = {'logStreamName': s['name'], 'creationTime': int(s['created'] * 1000),
                 'arn': 'arn:aws:logs:%s:%s:log-group:%s:log-stream:%s' % (region, args.account, LOG_GROUP, s['name']),
                 'storedBytes': 0}
            if s['events']:
                d.update({'firstEventTimestamp': s['events'][0]['timestamp'],
                          'lastEventTimestamp': s['events'][-1]['timestamp'],
                          'lastIngestionTime': s['events'][-1]['ingestionTime']})
            found.append(d)
    key = (lambda d: d['logStreamName']) if order == 'LogStreamName' else (lambda d: d.get('lastEventTimestamp', 0))
    found.sort(key=key, reverse=bool(p.get('descending')))
    start = int(p.get('nextToken') or 0)
    n = p.get('limit', 50)
    out = {'logStreams': found[start:start + n]}
    if start + n < len(found):
        out['nextToken'] = str(start + n)
    return out


def get_log_events(p, region):
    """Tokens as CloudWatch's: f/N reads forward from event N, b/N backward from it; at the end the
    forward token comes back unchanged."""
    log_group(p)
    with lock:
        s = next((s for s in all_streams() if s['name'] == p['logStreamName']), None)
        if not s:
            raise ApiError(400, 'ResourceNotFoundException', 'The specified log stream does not exist.')
        ev = [e for e in s['events'] if p.get('startTime', 0) <= e['timestamp']
              and ('endTime' not in p or e['timestamp'] < p['endTime'])]
    n = p.get('limit', 10000)
    token = p.get('nextToken')
    if token and re.fullmatch(r'[fb]/\d+', token):
        i = int(token[2:])
        forward = token[0] == 'f'
    elif token:
        raise ApiError(400, 'InvalidParameterException', 'The specified nextToken is invalid.')
    else:
        forward = bool(p.get('startFromHead'))
        i = 0 if forward else len(ev)
    if forward:
        got, lo, hi = ev[i:i + n], i, min(len(ev), i + n)
    else:
        lo = max(0, i - n)
        got, hi = ev[lo:i], i
    return {'events': [dict(e) for e in got], 'nextForwardToken': 'f/%d' % hi, 'nextBackwardToken': 'b/%d' % lo}


HANDLERS = {'CreateTrainingJob': create_training_job, 'DescribeTrainingJob': describe_training_job,
            'StopTrainingJob': stop_training_job, 'ListTags': list_tags,
            'ListTrainingJobs': list_training_jobs,
            'DescribeLogStreams': describe_log_streams, 'GetLogEvents': get_log_events}


# ---- HTTP --------------------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/x-amz-json-1.1')
        self.send_header('x-amzn-RequestId', hashlib.sha1(('%f' % time.time()).encode()).hexdigest()[:32])
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.entry['status'] = status

    def error(self, e):
        self.entry['error'] = e.code
        self.reply(e.status, {'__type': e.code, 'message': e.message}, {'X-Amzn-ErrorType': e.code})

    def do_GET(self):
        self.entry = {}
        if self.path == '/_/log':
            with lock:
                return self.reply(200, calls)
        if self.path == '/_/jobs':
            with lock:
                return self.reply(200, [j.summary() for j in jobs.values()])
        self.error(ApiError(404, 'UnknownOperationException', 'Unknown operation'))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        self.entry = {}
        if self.path == '/_/script':
            return self.script(body)
        target = self.headers.get('X-Amz-Target', '')
        prefix, _, name = target.partition('.')
        self.entry = {'op': name or target, 'service': prefix}
        with lock:
            calls.append(self.entry)
        try:
            self.api(prefix, name, body)
        except ApiError as e:
            self.error(e)

    def script(self, body):
        try:
            new = json.loads(body)
        except ValueError as e:
            return self.error(invalid('bad JSON: %s' % e))
        with lock:
            for r in new if isinstance(new, list) else [new]:
                for kind in ('throttle', 'internal_error'):
                    if r.get(kind):
                        op_faults.append({'kind': kind, 'left': int(r[kind]), 'op': r.get('op')})
                if 'job' in r:
                    rules.append(r)
        self.reply(200, {'rules': len(rules), 'faults': len(op_faults)})

    def api(self, prefix, name, body):
        if prefix not in MODELS or name not in OPS[prefix]:
            verify(self, SIGNING.get(prefix, 'sagemaker'), body)
            self.entry['verified'] = True
            raise ApiError(400, 'UnknownOperationException', 'Unknown operation %s' % (self.headers.get('X-Amz-Target')
                                                                                       or ''))
        region = verify(self, SIGNING[prefix], body)
        self.entry['verified'] = True
        ctype = self.headers.get('Content-Type', '')
        if ctype.split(';')[0].strip() != 'application/x-amz-json-1.1':
            raise ApiError(400, 'SerializationException', 'Content-Type %r is not application/x-amz-json-1.1' % ctype)
        with lock:
            fault = next((f for f in op_faults if f['left'] > 0 and f['op'] in (None, name)), None)
            if fault:
                fault['left'] -= 1
        if fault and fault['kind'] == 'throttle':
            raise ApiError(400, 'ThrottlingException', 'Rate exceeded')
        if fault:
            raise ApiError(500, 'InternalFailure', 'We encountered an internal error. Please try again.')
        try:
            params = json.loads(body or b'{}')
        except ValueError:
            raise ApiError(400, 'SerializationException', 'The request body is not valid JSON')
        if not isinstance(params, dict):
            raise ApiError(400, 'SerializationException', 'The request body is not a JSON object')
        op = MODELS[prefix].operation_model(name)
        problem = validate(params, op.input_shape)
        self.entry['validation'] = problem or 'ok'
        if problem:
            raise invalid(problem)
        answer = HANDLERS[name](params, region)
        check_output(op, answer)
        self.reply(200, answer)


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
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port-file', required=True)
    p.add_argument('--keys', required=True, help='JSON lines {"akid", "secret", "token", "expires"}')
    p.add_argument('--podman-dir', required=True, help="holds Podman's root/, run/ and tmp/ (tests/lib.sh's)")
    p.add_argument('--jobs-dir', required=True, help='a directory per job: its /opt/ml/output and checkpoints')
    p.add_argument('--account', default='123456789012')
    p.add_argument('--container-label', action='append', default=[], help='KEY=VALUE on every container')
    p.add_argument('--container-env', action='append', default=[], help='KEY=VALUE in every container')
    p.add_argument('--container-credentials-url', default='', help="the role's credentials (awsfake's /ecs/creds)")
    p.add_argument('--container-credentials-token', default='')
    p.add_argument('--instance-memory', action='append', default=[], help='TYPE=BYTES, over the table')
    p.add_argument('--stop-grace', type=int, default=120, help='seconds from SIGTERM to SIGKILL')
    p.add_argument('--start-delay', type=float, default=0.3, help='seconds in Starting and in Downloading')
    args = p.parse_args()
    args.podman_dir = os.path.abspath(args.podman_dir)
    args.jobs_dir = os.path.abspath(args.jobs_dir)
    os.makedirs(args.jobs_dir, exist_ok=True)
    load_keys()
    signal.signal(signal.SIGTERM, cleanup)
    signal.signal(signal.SIGINT, cleanup)
    srv = Server(('127.0.0.1', 0), Handler)
    with open(args.port_file + '.tmp', 'w') as f:
        f.write(str(srv.server_address[1]))
    os.rename(args.port_file + '.tmp', args.port_file)
    srv.serve_forever()


if __name__ == '__main__':
    main()
