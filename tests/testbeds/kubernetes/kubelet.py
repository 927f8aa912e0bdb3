#!/usr/bin/env python3
"""The test kubelet: plays one Kubernetes node for the test bed (README.md).

It registers a Node with the given capacity, keeps its Ready condition and Lease fresh, watches
the pods bound to it, runs each pod's init containers and its one container with Podman, reports
pod status with merge PATCHes to pods/NAME/status, confirms graceful deletions (grace-0 DELETE
with a UID precondition) once the container stopped, and serves /containerLogs over HTTPS with
client-certificate auth for the API server's log endpoint. Python 3 standard library only.
"""
import argparse
import base64
import datetime
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

ARGS = None
PODMAN = []


def log(msg):
    sys.stderr.write("%s kubelet: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def podman_time(s):
    """Podman's RFC 3339 times (nanoseconds, any zone) as Kubernetes' second-precision UTC."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", s or "")
    if not m:
        return now()
    zone = "+00:00" if m.group(2) == "Z" else m.group(2)
    t = datetime.datetime.fromisoformat(m.group(1) + zone)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


QUANTITY_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                   "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                   "m": 10**-3, "": 1}


def quantity(q):
    """A Kubernetes resource quantity ("64Mi", "500m", "1e9") as a float."""
    m = re.fullmatch(r"([0-9.]+(?:[eE][0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?", str(q).strip())
    if not m:
        raise ValueError("bad quantity %r" % q)
    return float(m.group(1)) * QUANTITY_SUFFIX[m.group(2) or ""]


class ConfigError(Exception):
    """A pod the kubelet cannot start; reason is the container's waiting reason."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason
        self.message = message


class Api:
    """A client of the API server with the kubelet's own certificate (one connection per thread)."""

    def __init__(self, server, ca, cert, key):
        u = urllib.parse.urlsplit(server)
        self.host, self.port = u.hostname, u.port or 443
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)
        self.local = threading.local()

    def _conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, ctype="application/json"):
        """(status, decoded JSON body or None); one retry on a dropped kept-alive connection."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = ctype
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = self._conn(30)
            try:
                conn.request(method, path, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
                continue
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None
        raise OSError("unreachable")

    def watch(self, path):
        """The events of a watch, one decoded object each, until the server ends it."""
        conn = self._conn(ARGS.watch_timeout + 30)
        try:
            conn.request("GET", path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise OSError("watch answered %d: %s" % (resp.status, resp.read()[:300]))
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


API = None


def podman(*args, check=True, timeout=None):
    r = subprocess.run(PODMAN + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise OSError("podman %s: %s" % (args[0], r.stderr.strip()[-500:]))
    return r


# ---------------------------------------------------------------- the node

def node_status():
    cap = {"cpu": ARGS.cpu, "memory": ARGS.memory, "pods": "110", "ephemeral-storage": "100Gi"}
    if ARGS.gpus > 0:
        cap[ARGS.gpu_resource] = str(ARGS.gpus)
    t = now()
    conds = [{"type": "Ready", "status": "True", "reason": "KubeletReady",
              "message": "test kubelet is posting ready status", "lastHeartbeatTime": t,
              "lastTransitionTime": STARTED}]
    for c, r in (("MemoryPressure", "KubeletHasSufficientMemory"), ("DiskPressure", "KubeletHasNoDiskPressure"),
                 ("PIDPressure", "KubeletHasSufficientPID")):
        conds.append({"type": c, "status": "False", "reason": r, "message": "test kubelet",
                      "lastHeartbeatTime": t, "lastTransitionTime": STARTED})
    return {"status": {
        "capacity": cap, "allocatable": cap, "conditions": conds,
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": ARGS.node}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": ARGS.port}},
        "nodeInfo": {"machineID": "kbed", "systemUUID": "kbed", "bootID": "kbed", "kernelVersion": os.uname().release,
                     "osImage": "stepop test kubelet", "containerRuntimeVersion": "podman://" + PODMAN_VERSION,
                     "kubeletVersion": "v1.20.2-kbed", "kubeProxyVersion": "v1.20.2-kbed",
                     "operatingSystem": "linux", "architecture": "amd64"}}}


def register():
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": ARGS.node, "labels": {
        "kubernetes.io/hostname": ARGS.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64"}}}
    st, ans = API.request("POST", "/api/v1/nodes", body)
    if st not in (201, 409):
        raise OSError("registering node %s: %d %s" % (ARGS.node, st, ans))
    st, node = API.request("GET", "/api/v1/nodes/" + ARGS.node)
    if st != 200:
        raise OSError("reading node %s: %d %s" % (ARGS.node, st, node))
    return node["metadata"]["uid"]


def heartbeat(node_uid):
    lease_path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/"
    have_lease = False
    while True:
        try:
            st, ans = API.request("PATCH", "/api/v1/nodes/%s/status" % ARGS.node, node_status(),
                                  "application/merge-patch+json")
            if st != 200:
                log("node status: %d %s" % (st, ans))
            if not have_lease:
                lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": ARGS.node, "ownerReferences": [
                             {"apiVersion": "v1", "kind": "Node", "name": ARGS.node, "uid": node_uid}]},
                         "spec": {"holderIdentity": ARGS.node, "leaseDurationSeconds": 40, "renewTime": now_micro()}}
                st, ans = API.request("POST", lease_path[:-1], lease)
                have_lease = st in (201, 409)
                if not have_lease:
                    log("lease: %d %s" % (st, ans))
            if have_lease:
                st, ans = API.request("PATCH", lease_path + ARGS.node,
                                      {"spec": {"holderIdentity": ARGS.node, "renewTime": now_micro()}},
                                      "application/merge-patch+json")
                if st == 404:
                    have_lease = False
                elif st != 200:
                    log("lease renewal: %d %s" % (st, ans))
        except (OSError, http.client.HTTPException) as e:
            log("heartbeat: %s" % e)
        time.sleep(ARGS.heartbeat)


# ---------------------------------------------------------------- pods

WORKERS = {}        # pod uid -> PodWorker
WORKERS_LOCK = threading.Lock()
LOGS = {}           # (namespace, pod, container) -> podman container id (latest run)
LOGS_LOCK = threading.Lock()


def field_path(pod, path):
    md = pod["metadata"]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path)
    if m:
        return (md.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {"metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
              "metadata.uid": md.get("uid"), "spec.nodeName": pod["spec"].get("nodeName"),
              "spec.serviceAccountName": pod["spec"].get("serviceAccountName"),
              "status.hostIP": "127.0.0.1", "status.podIP": "127.0.0.1"}
    if path in simple:
        return simple[path] or ""
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((md.get(path.split(".")[1]) or {}).items())
        return "\n".join('%s="%s"' % kv for kv in items)
    raise ConfigError("CreateContainerConfigError", "test kubelet: unsupported fieldRef %s" % path)


def expand(s, env):
    """Kubernetes' $(VAR) references: defined variables are replaced, $$ escapes."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)


class PodWorker(threading.Thread):
    """Runs one pod: prepare, init containers, the container (restarts for OnFailure), report, and
    confirm its deletion."""

    def __init__(self, pod):
        super().__init__(daemon=True)
        self.pod = pod
        self.uid = pod["metadata"]["uid"]
        self.ns = pod["metadata"]["namespace"]
        self.name = pod["metadata"]["name"]
        self.lock = threading.Lock()
        self.deleting = threading.Event()
        self.gone_ev = threading.Event()
        self.cid = None
        self.cids = []
        self.started_at = now()
        self.init_statuses = []
        self.dir = os.path.join(ARGS.state, "pods", self.uid)
        self.cache = {}

    # ---- API
    def patch_status(self, phase, container_statuses, ready=False, initialized=True, reason=None, message=None):
        t = now()
        conds = [{"type": "Initialized", "status": "True" if initialized else "False", "lastProbeTime": None,
                  "lastTransitionTime": t},
                 {"type": "Ready", "status": "True" if ready else "False", "lastProbeTime": None, "lastTransitionTime": t},
                 {"type": "ContainersReady", "status": "True" if ready else "False", "lastProbeTime": None,
                  "lastTransitionTime": t},
                 {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": t}]
        if phase in ("Succeeded", "Failed"):
            for c in conds[1:3]:
                c["reason"] = "PodCompleted"
        status = {"phase": phase, "conditions": conds, "hostIP": "127.0.0.1", "podIP": "127.0.0.1",
                  "podIPs": [{"ip": "127.0.0.1"}], "startTime": self.started_at,
                  "containerStatuses": container_statuses, "reason": reason, "message": message}
        if self.pod["spec"].get("initContainers"):
            status["initContainerStatuses"] = self.init_statuses
        try:
            st, ans = API.request("PATCH", "/api/v1/namespaces/%s/pods/%s/status" % (self.ns, self.name),
                                  {"status": status}, "application/merge-patch+json")
            if st != 200:
                log("%s/%s status %s: %d %s" % (self.ns, self.name, phase, st, (ans or {}).get("message")))
        except (OSError, http.client.HTTPException) as e:
            log("%s/%s status %s: %s" % (self.ns, self.name, phase, e))

    def cstatus(self, c, state, ready=False, restarts=0, last=None, cid=None):
        s = {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
             "restartCount": restarts, "started": "running" in state, "state": state,
             "lastState": {"terminated": last} if last else {}}
        if cid:
            s["containerID"] = "podman://" + cid
        return s

    def get(self, kind, name):
        key = (kind, name)
        if key not in self.cache:
            st, obj = API.request("GET", "/api/v1/namespaces/%s/%s/%s" % (self.ns, kind, name))
            if st != 200:
                raise ConfigError("CreateContainerConfigError", '%s "%s" not found' % (kind[:-1], name)
                                  if st == 404 else "reading %s %s: %d" % (kind, name, st))
            data = dict((k, base64.b64decode(v)) for k, v in (obj.get("data") or {}).items()) \
                if kind == "secrets" else \
                dict([(k, v.encode()) for k, v in (obj.get("data") or {}).items()] +
                     [(k, base64.b64decode(v)) for k, v in (obj.get("binaryData") or {}).items()])
            self.cache[key] = data
        return self.cache[key]

    # ---- preparing a container
    def env(self, c):
        env = {}
        for ef in c.get("envFrom") or []:
            ref = ef.get("configMapRef") or ef.get("secretRef")
            kind = "configmaps" if "configMapRef" in ef else "secrets"
            try:
                data = self.get(kind, ref["name"])
            except ConfigError:
                if ref.get("optional"):
                    continue
                raise
            for k, v in data.items():
                env[ef.get("prefix", "") + k] = v.decode(errors="replace")
        for e in c.get("env") or []:
            if "valueFrom" not in e:
                env[e["name"]] = expand(e.get("value", ""), env)
                continue
            vf = e["valueFrom"]
            if "fieldRef" in vf:
                env[e["name"]] = field_path(self.pod, vf["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in vf:
                r = vf["resourceFieldRef"]
                kind, res = r["resource"].split(".", 1)
                val = ((c.get("resources") or {}).get(kind) or {}).get(res)
                div = quantity(r.get("divisor", "1"))
                env[e["name"]] = str(int(-(-quantity(val) // div))) if val else \
                    {"cpu": ARGS.cpu, "memory": str(int(quantity(ARGS.memory)))}.get(res, "0")
            else:
                kind = "configmaps" if "configMapKeyRef" in vf else "secrets"
                ref = vf.get("configMapKeyRef") or vf.get("secretKeyRef")
                try:
                    data = self.get(kind, ref["name"])
                    if ref["key"] not in data:
                        raise ConfigError("CreateContainerConfigError",
                                          "couldn't find key %s in %s %s/%s" % (ref["key"], kind[:-1], self.ns, ref["name"]))
                    env[e["name"]] = data[ref["key"]].decode(errors="replace")
                except ConfigError:
                    if not ref.get("optional"):
                        raise
        return env

    def volumes(self):
        """host paths of the pod's volumes by name; None for a /dev/shm-style memory emptyDir."""
        vols = {}
        for v in self.pod["spec"].get("volumes") or []:
            path = os.path.join(self.dir, "volumes", v["name"])
            if "emptyDir" in v:
                os.makedirs(path, exist_ok=True)
                os.chmod(path, 0o777)
                vols[v["name"]] = (path, v["emptyDir"])
            elif "hostPath" in v:
                vols[v["name"]] = (v["hostPath"]["path"], None)
            elif "secret" in v or "configMap" in v:
                kind, src = ("secrets", v["secret"]) if "secret" in v else ("configmaps", v["configMap"])
                try:
                    data = self.get(kind, src.get("secretName") or src.get("name"))
                except ConfigError:
                    if src.get("optional"):
                        data = {}
                    else:
                        raise
                os.makedirs(path, exist_ok=True)
                items = src.get("items") or [{"key": k, "path": k} for k in data]
                for it in items:
                    f = os.path.join(path, it["path"])
                    os.makedirs(os.path.dirname(f), exist_ok=True)
                    with open(f, "wb") as fh:
                        fh.write(data.get(it["key"], b""))
                    os.chmod(f, it.get("mode", src.get("defaultMode", 0o644)))
                vols[v["name"]] = (path, None)
            elif "persistentVolumeClaim" in v:
                # A test stand-in for a bound claim: one directory per claim, kept for the bed's life.
                path = os.path.join(ARGS.state, "claims", self.ns, v["persistentVolumeClaim"]["claimName"])
                os.makedirs(path, exist_ok=True)
                vols[v["name"]] = (path, None)
            else:
                kind = next((k for k in v if k != "name"), "?")
                raise ConfigError("CreateContainerConfigError", "test kubelet: volume type %s not supported" % kind)
        return vols

    def run_args(self, c, vols, cname):
        env = self.env(c)
        api = ARGS.kube_service.rsplit(":", 1)
        # As a real kubelet does for the kubernetes service; the address is loopback here.
        for k, v in (("KUBERNETES_SERVICE_HOST", api[0]), ("KUBERNETES_SERVICE_PORT", api[1]),
                     ("KUBERNETES_SERVICE_PORT_HTTPS", api[1]), ("KUBERNETES_PORT", "tcp://" + ARGS.kube_service)):
            env.setdefault(k, v)
        a = ["run", "-d", "--name", cname, "--pull", "never", "--log-driver", "k8s-file",
             "--network", "host", "--hostname", self.name,
             "--label", "io.kubernetes.pod.uid=" + self.uid, "--label", "io.kubernetes.pod.name=" + self.name,
             "--label", "io.kubernetes.pod.namespace=" + self.ns, "--label", "io.kubernetes.container.name=" + c["name"]]
        for lb in ARGS.container_label:
            a += ["--label", lb]
        limits = (c.get("resources") or {}).get("limits") or {}
        if limits.get("memory"):
            mem = str(int(quantity(limits["memory"])))
            a += ["--memory", mem, "--memory-swap", mem]
        if limits.get("cpu"):
            a += ["--cpus", "%.3f" % quantity(limits["cpu"])]
        sc = dict(self.pod["spec"].get("securityContext") or {})
        sc.update(c.get("securityContext") or {})
        if sc.get("runAsUser") is not None:
            a += ["--user", "%d%s" % (sc["runAsUser"], ":%d" % sc["runAsGroup"] if sc.get("runAsGroup") is not None else "")]
        if sc.get("privileged"):
            a += ["--privileged"]
        if sc.get("readOnlyRootFilesystem"):
            a += ["--read-only"]
        if self.pod["spec"].get("hostIPC"):
            a += ["--ipc", "host"]
        if c.get("workingDir"):
            a += ["--workdir", c["workingDir"]]
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vols:
                raise ConfigError("CreateContainerConfigError", "volume %s not found" % m["name"])
            host, empty = vols[m["name"]]
            if empty is not None and empty.get("medium") == "Memory" and m["mountPath"] == "/dev/shm":
                size = empty.get("sizeLimit")
                a += ["--shm-size", str(int(quantity(size))) if size else "64m"]
                continue
            if m.get("subPath"):
                host = os.path.join(host, m["subPath"])
                os.makedirs(host, exist_ok=True)
            a += ["-v", "%s:%s%s" % (host, m["mountPath"], ":ro" if m.get("readOnly") else "")]
        for k, v in env.items():
            a += ["--env", "%s=%s" % (k, v)]
        cmd = [expand(x, env) for x in c.get("command") or []]
        args = [expand(x, env) for x in c.get("args") or []]
        if cmd:
            # Kubernetes: command replaces the entrypoint and, without args, the image's CMD too.
            a += ["--entrypoint", json.dumps(cmd)]
        a.append(c["image"])
        a += args
        return a

    def image_check(self, c):
        image = c.get("image") or ""
        if not re.fullmatch(r"[a-z0-9]+(?:[._/:@-][A-Za-z0-9_.-]+)*", image):
            raise ConfigError("InvalidImageName", 'Failed to apply default image tag "%s": couldn\'t parse image '
                              'reference "%s": invalid reference format' % (image, image))
        if podman("image", "exists", image, check=False).returncode != 0:
            raise ConfigError("ErrImagePull", 'rpc error: code = Unknown desc = test kubelet: image "%s" is not '
                              'in the local Podman store (no registry is reached)' % image)

    # ---- running
    def start_container(self, c, vols, suffix):
        """The container's id, or None when deletion came first."""
        cname = "k8s_%s_%s_%s_%s_%s" % (c["name"], self.name, self.ns, self.uid[:8], suffix)
        args = self.run_args(c, vols, cname)
        with self.lock:
            if self.deleting.is_set() or self.gone_ev.is_set():
                return None
            podman("rm", "-f", "-t", "0", cname, check=False)
            r = podman(*args, check=False)
            if r.returncode != 0:
                raise ConfigError("RunContainerError", r.stderr.strip()[-400:] or "podman run failed")
            self.cid = r.stdout.strip().splitlines()[-1]
            self.cids.append(self.cid)
        with LOGS_LOCK:
            LOGS[(self.ns, self.name, c["name"])] = self.cid
        return self.cid

    def wait_container(self, cid):
        """Podman's view of the exited container as a containerStatus 'terminated' state."""
        while True:
            r = podman("wait", cid, check=False)
            if r.returncode == 0 or self.gone_ev.is_set():
                break
            if podman("container", "exists", cid, check=False).returncode != 0:
                break
            time.sleep(0.5)
        r = podman("inspect", "--format", "json", cid, check=False)
        try:
            st = json.loads(r.stdout)[0]["State"]
        except (ValueError, IndexError, KeyError):
            st = {"ExitCode": 137, "OOMKilled": False}
        code = int(st.get("ExitCode", 0))
        oom = bool(st.get("OOMKilled")) or (code == 137 and oom_killed(cid))
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        self.cid = None
        return {"exitCode": code, "reason": reason, "startedAt": podman_time(st.get("StartedAt")),
                "finishedAt": podman_time(st.get("FinishedAt")), "containerID": "podman://" + cid}

    def run(self):
        try:
            self.work()
        except Exception as e:  # a bug here must not take the kubelet down
            log("%s/%s: %s: %s" % (self.ns, self.name, type(e).__name__, e))
        self.deleting.wait()
        self.confirm_delete()

    def work(self):
        spec = self.pod["spec"]
        if self.pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        c = spec["containers"][0]
        waiting = {"waiting": {"reason": "ContainerCreating"}}
        self.init_statuses = [self.cstatus(ic, {"waiting": {"reason": "PodInitializing"}})
                              for ic in spec.get("initContainers") or []]
        self.patch_status("Pending", [self.cstatus(c, waiting)], initialized=not self.init_statuses)
        try:
            if len(spec["containers"]) != 1:
                raise ConfigError("CreateContainerConfigError", "test kubelet: one container per pod only")
            for x in (spec.get("initContainers") or []) + [c]:
                self.image_check(x)
            vols = self.volumes()
            for i, ic in enumerate(spec.get("initContainers") or []):
                cid = self.start_container(ic, vols, "init%d" % i)
                if cid is None:
                    return
                self.init_statuses[i] = self.cstatus(ic, {"running": {"startedAt": now()}}, cid=cid)
                self.patch_status("Pending", [self.cstatus(c, {"waiting": {"reason": "PodInitializing"}})],
                                  initialized=False)
                term = self.wait_container(cid)
                self.init_statuses[i] = self.cstatus(ic, {"terminated": term}, cid=cid)
                if term["exitCode"] != 0:
                    self.patch_status("Failed", [self.cstatus(c, {"waiting": {"reason": "PodInitializing"}})],
                                      initialized=False)
                    return
            restarts, last = 0, None
            while True:
                cid = self.start_container(c, vols, str(restarts))
                if cid is None:
                    return
                self.patch_status("Running", [self.cstatus(c, {"running": {"startedAt": now()}}, ready=True,
                                                           restarts=restarts, last=last, cid=cid)], ready=True)
                term = self.wait_container(cid)
                failed = term["exitCode"] != 0
                if failed and spec.get("restartPolicy") == "OnFailure" and not self.deleting.is_set() \
                        and not self.gone_ev.is_set():
                    restarts, last = restarts + 1, term
                    time.sleep(min(10, restarts))
                    continue
                self.patch_status("Failed" if failed else "Succeeded",
                                  [self.cstatus(c, {"terminated": term}, restarts=restarts, last=last, cid=cid)])
                return
        except ConfigError as e:
            log("%s/%s: %s: %s" % (self.ns, self.name, e.reason, e.message))
            self.patch_status("Pending", [self.cstatus(c, {"waiting": {"reason": e.reason, "message": e.message}})])
            if e.reason == "ErrImagePull" and not self.deleting.wait(ARGS.backoff):
                self.patch_status("Pending", [self.cstatus(c, {"waiting": {
                    "reason": "ImagePullBackOff", "message": 'Back-off pulling image "%s"' % c.get("image")}})])

    def update(self, pod):
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and not self.deleting.is_set():
            grace = pod["metadata"].get("deletionGracePeriodSeconds")
            if grace is None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
            self.deleting.set()
            threading.Thread(target=self.stop, args=(int(grace),), daemon=True).start()

    def stop(self, grace):
        with self.lock:
            cid = self.cid
        if cid:
            log("%s/%s: stopping %s (grace %ds)" % (self.ns, self.name, cid[:12], grace))
            podman("stop", "-t", str(grace), cid, check=False)

    def confirm_delete(self):
        if self.gone_ev.is_set():
            return
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": self.uid}}
        for _ in range(30):
            try:
                st, ans = API.request("DELETE", "/api/v1/namespaces/%s/pods/%s" % (self.ns, self.name), body)
                if st in (200, 404, 409):
                    return
                log("%s/%s confirm delete: %d %s" % (self.ns, self.name, st, (ans or {}).get("message")))
            except (OSError, http.client.HTTPException) as e:
                log("%s/%s confirm delete: %s" % (self.ns, self.name, e))
            time.sleep(1)

    def gone(self):
        """The pod left the API server: its containers and files go too."""
        self.gone_ev.set()
        self.deleting.set()
        with self.lock:
            cids = list(self.cids)
        with LOGS_LOCK:
            for k in [k for k, v in LOGS.items() if v in cids]:
                del LOGS[k]
        for cid in cids:
            podman("rm", "-f", "-t", "0", cid, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def oom_killed(cid):
    """Podman on cgroup v1 reports OOMKilled=false after a cgroup OOM; the kernel names the cgroup."""
    try:
        out = subprocess.run(["dmesg"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    except OSError:
        return False
    return any("oom_memcg=" in line and "libpod-" + cid in line for line in out.splitlines())


def sync(pod):
    uid = pod["metadata"]["uid"]
    with WORKERS_LOCK:
        w = WORKERS.get(uid)
        if w is None:
            w = WORKERS[uid] = PodWorker(pod)
            log("pod %s/%s (%s)" % (w.ns, w.name, uid))
            w.update(pod)
            w.start()
            return
    w.update(pod)


def forget(uid):
    with WORKERS_LOCK:
        w = WORKERS.pop(uid, None)
    if w is not None:
        log("pod %s/%s gone" % (w.ns, w.name))
        threading.Thread(target=w.gone, daemon=True).start()


def pods_loop():
    sel = urllib.parse.quote("spec.nodeName=" + ARGS.node)
    while True:
        try:
            st, lst = API.request("GET", "/api/v1/pods?fieldSelector=" + sel)
            if st != 200:
                raise OSError("listing pods: %d %s" % (st, (lst or {}).get("message")))
            seen = set()
            for p in lst["items"]:
                seen.add(p["metadata"]["uid"])
                sync(p)
            with WORKERS_LOCK:
                lost = [u for u in WORKERS if u not in seen]
            for u in lost:
                forget(u)
            rv = lst["metadata"]["resourceVersion"]
            for ev in API.watch("/api/v1/pods?watch=true&fieldSelector=%s&resourceVersion=%s&timeoutSeconds=%d"
                                % (sel, rv, ARGS.watch_timeout)):
                if ev.get("type") == "ERROR":
                    break
                obj = ev.get("object") or {}
                if ev.get("type") == "DELETED":
                    forget(obj["metadata"]["uid"])
                elif ev.get("type") in ("ADDED", "MODIFIED"):
                    sync(obj)
        except Exception as e:  # the API server may be away for a while: keep trying
            log("pods: %s: %s" % (type(e).__name__, e))
            time.sleep(1)


# ---------------------------------------------------------------- logs

class LogHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        log("logs: " + fmt % args)

    def answer(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        parts = u.path.strip("/").split("/")
        if u.path in ("/healthz", "/readyz"):
            return self.answer(200, "ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self.answer(404, "test kubelet: only /containerLogs/NAMESPACE/POD/CONTAINER is served\n")
        ns, pod, container = parts[1:]
        if q.get("previous") == "true":
            return self.answer(400, 'previous terminated container "%s" in pod "%s" not found\n' % (container, pod))
        with LOGS_LOCK:
            cid = LOGS.get((ns, pod, container))
        if cid is None:
            return self.answer(400, 'container "%s" in pod "%s" is waiting to start: ContainerCreating\n' % (container, pod))
        cmd = PODMAN + ["logs"]
        if q.get("follow") == "true":
            cmd.append("--follow")
        if q.get("timestamps") == "true":
            cmd.append("--timestamps")
        if q.get("tailLines"):
            cmd += ["--tail", str(int(q["tailLines"]))]
        if q.get("sinceSeconds"):
            cmd += ["--since", "%ds" % int(q["sinceSeconds"])]
        elif q.get("sinceTime"):
            cmd += ["--since", q["sinceTime"]]
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None
        proc = subprocess.Popen(cmd + [cid], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.flush()
            while limit is None or limit > 0:
                chunk = proc.stdout.read1(65536 if limit is None else min(65536, limit))
                if not chunk:
                    break
                self.wfile.write(chunk)
                self.wfile.flush()
                if limit is not None:
                    limit -= len(chunk)
        except OSError:
            pass
        finally:
            proc.kill()
            proc.wait()


class LogServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, addr = super().get_request()
        sock.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):
            sock.close()
            raise
        tls.settimeout(None)
        return tls, addr


def serve_logs():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.cert, ARGS.key)
    # Only clients with a certificate from the bed's CA (the API server's kubelet client).
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ARGS.ca)
    srv = LogServer(("127.0.0.1", ARGS.port), LogHandler, bind_and_activate=True)
    srv.ctx = ctx
    srv.serve_forever()


# ---------------------------------------------------------------- main

STARTED = now()
PODMAN_VERSION = "unknown"


def main():
    global ARGS, API, PODMAN, PODMAN_VERSION
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True, help="kubelet certificate (CN=system:node:NODE, O=system:nodes)")
    ap.add_argument("--key", required=True)
    ap.add_argument("--node", default="kbed-node")
    ap.add_argument("--port", type=int, required=True, help="HTTPS port for /containerLogs")
    ap.add_argument("--cpu", default="4")
    ap.add_argument("--memory", default="8Gi")
    ap.add_argument("--gpus", type=int, default=0)
    ap.add_argument("--gpu-resource", default="nvidia.com/gpu")
    ap.add_argument("--podman-dir", required=True, help="holds Podman's root/, run/ and tmp/")
    ap.add_argument("--state", required=True, help="the kubelet's own files (volumes)")
    ap.add_argument("--container-label", action="append", default=[], help="KEY=VALUE on every container")
    ap.add_argument("--kube-service", help="HOST:PORT pods get as KUBERNETES_SERVICE_HOST/PORT (default: --server's)")
    ap.add_argument("--heartbeat", type=float, default=10)
    ap.add_argument("--backoff", type=float, default=2, help="seconds from ErrImagePull to ImagePullBackOff")
    ap.add_argument("--watch-timeout", type=int, default=60)
    ARGS = ap.parse_args()
    if not ARGS.kube_service:
        u = urllib.parse.urlsplit(ARGS.server)
        ARGS.kube_service = "%s:%d" % (u.hostname, u.port or 443)
    # Podman's database records the storage paths as given: always the absolute ones, as tests/lib.sh.
    d = os.path.abspath(ARGS.podman_dir)
    PODMAN = ["podman", "--root", d + "/root", "--runroot", d + "/run", "--tmpdir", d + "/tmp"]
    PODMAN_VERSION = podman("version", "--format", "{{.Client.Version}}", check=False).stdout.strip() or "unknown"
    os.makedirs(ARGS.state, exist_ok=True)
    API = Api(ARGS.server, ARGS.ca, ARGS.cert, ARGS.key)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=serve_logs, daemon=True).start()
    node_uid = None
    while node_uid is None:
        try:
            node_uid = register()
        except (OSError, http.client.HTTPException) as e:
            log("register: %s" % e)
            time.sleep(1)
    log("node %s registered; logs on https://127.0.0.1:%d" % (ARGS.node, ARGS.port))
    threading.Thread(target=heartbeat, args=(node_uid,), daemon=True).start()
    pods_loop()


if __name__ == "__main__":
    main()
