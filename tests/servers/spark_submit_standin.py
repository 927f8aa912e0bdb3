#!/usr/bin/python3
"""A stand-in for spark-submit, used only by the tests (Spark cannot be installed here). It does
what Spark's documentation says spark-submit does for the two paths the spark flavor uses:

- client mode (any master): the driver runs here. For a Python application Spark's PythonRunner
  runs the application file with Python, so this runs `python3 APP ARGS` in place of itself
  (exec: signals reach it as they would reach the driver JVM's Python child).
- cluster mode on Kubernetes with spark.kubernetes.submission.waitAppCompletion=false: Spark's
  Kubernetes submission client builds the driver pod from the pod template
  (spark.kubernetes.driver.podTemplateFile, the container named by podTemplateContainerName),
  adds its labels (spark-app-selector, spark-role=driver, spark.kubernetes.driver.label.*), the
  image, pull policy, service account, driverEnv.* and secretKeyRef.* as env, hostPath volumes
  from spark.kubernetes.driver.volumes.hostPath.*, the memory limit from --driver-memory (without
  Spark's overhead), GPUs as the limit VENDOR/gpu, and the container's args (driver
  --properties-file ... [--class C] APP ARGS), creates it through the API server and returns.
  Here the API server is the Kubernetes test bed's, reached with the kubeconfig's server and
  client certificate.

SPARK_STANDIN_ARGV=FILE: the argv is written there as JSON, for the tests to compare. Debian's
python3 (python3-yaml) reads the template as YAML, as Spark does.
"""
import json
import os
import ssl
import sys
import urllib.request
import uuid

import yaml


def fail(msg, code=1):
    print("spark-submit (stand-in): " + msg, file=sys.stderr)
    sys.exit(code)


def parse(argv):
    opts = {"conf": {}}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--conf":
            k, _, v = argv[i + 1].partition("=")
            opts["conf"][k] = v
            i += 2
        elif a in ("--master", "--deploy-mode", "--name", "--class", "--driver-memory", "--executor-memory",
                   "--executor-cores", "--driver-cores", "--num-executors"):
            opts[a[2:]] = argv[i + 1]
            i += 2
        elif a.startswith("--"):
            fail("unknown option " + a)
        else:
            opts["app"] = a
            opts["args"] = argv[i + 1:]
            break
    if "app" not in opts:
        fail("no application given")
    return opts


def kube_request(method, path, body):
    cfg = yaml.safe_load(open(os.environ["KUBECONFIG"]))
    ctx_name = cfg.get("current-context")
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    tls = ssl.create_default_context(cafile=cluster.get("certificate-authority"))
    if user.get("client-certificate"):
        tls.load_cert_chain(user["client-certificate"], user.get("client-key"))
    req = urllib.request.Request(cluster["server"].rstrip("/") + path, method=method,
                                 data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    if user.get("token"):
        req.add_header("Authorization", "Bearer " + user["token"])
    try:
        with urllib.request.urlopen(req, context=tls, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        fail("the API server answered %d: %s" % (e.code, e.read().decode(errors="replace")[:500]))


def cluster_k8s(o):
    conf = o["conf"]
    if conf.get("spark.kubernetes.submission.waitAppCompletion") != "false":
        fail("the stand-in only returns at once (waitAppCompletion=false)")
    ns = conf.get("spark.kubernetes.namespace", "default")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}}
    if conf.get("spark.kubernetes.driver.podTemplateFile"):
        pod = yaml.safe_load(open(conf["spark.kubernetes.driver.podTemplateFile"]))
    md, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
    app_id = "spark-" + uuid.uuid4().hex
    md["name"] = conf.get("spark.kubernetes.driver.pod.name") or o.get("name", "spark") + "-driver"
    labels = md.setdefault("labels", {})
    labels.update({"spark-app-selector": app_id, "spark-role": "driver", "spark-version": "standin"})
    ann = md.setdefault("annotations", {})
    for k, v in conf.items():
        if k.startswith("spark.kubernetes.driver.label."):
            labels[k[len("spark.kubernetes.driver.label."):]] = v
        if k.startswith("spark.kubernetes.driver.annotation."):
            ann[k[len("spark.kubernetes.driver.annotation."):]] = v
    spec["restartPolicy"] = "Never"
    if conf.get("spark.kubernetes.authenticate.driver.serviceAccountName"):
        spec["serviceAccountName"] = conf["spark.kubernetes.authenticate.driver.serviceAccountName"]
    name = conf.get("spark.kubernetes.driver.podTemplateContainerName", "spark-kubernetes-driver")
    containers = spec.setdefault("containers", [])
    c = next((x for x in containers if x.get("name") == name), None)
    if c is None:
        c = {"name": name}
        containers.insert(0, c)
    c["image"] = conf.get("spark.kubernetes.driver.container.image") or conf["spark.kubernetes.container.image"]
    if conf.get("spark.kubernetes.container.image.pullPolicy"):
        c["imagePullPolicy"] = conf["spark.kubernetes.container.image.pullPolicy"]
    env = c.setdefault("env", [])
    env.append({"name": "SPARK_APPLICATION_ID", "value": app_id})
    for k, v in conf.items():
        if k.startswith("spark.kubernetes.driverEnv."):
            env.append({"name": k[len("spark.kubernetes.driverEnv."):], "value": v})
        if k.startswith("spark.kubernetes.driver.secretKeyRef."):
            secret, _, key = v.partition(":")
            env.append({"name": k[len("spark.kubernetes.driver.secretKeyRef."):],
                        "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    vols = {}
    prefix = "spark.kubernetes.driver.volumes.hostPath."
    for k, v in conf.items():
        if k.startswith(prefix):
            vname, _, rest = k[len(prefix):].partition(".")
            vols.setdefault(vname, {})[rest] = v
    for vname, v in vols.items():
        spec.setdefault("volumes", []).append({"name": vname, "hostPath": {"path": v["options.path"]}})
        c.setdefault("volumeMounts", []).append({"name": vname, "mountPath": v["mount.path"]})
    if o.get("driver-memory"):
        mem = o["driver-memory"]
        c.setdefault("resources", {}).setdefault("limits", {})["memory"] = mem[:-1] + "Mi" if mem.endswith("m") else mem
    if conf.get("spark.driver.resource.gpu.amount"):
        vendor = conf.get("spark.driver.resource.gpu.vendor")
        if not vendor:
            fail("spark.driver.resource.gpu.vendor is required on Kubernetes")
        c.setdefault("resources", {}).setdefault("limits", {})[vendor + "/gpu"] = conf["spark.driver.resource.gpu.amount"]
    args = ["driver", "--properties-file", "/opt/spark/conf/spark.properties"]
    if o.get("class"):
        args += ["--class", o["class"]]
    c["args"] = args + [o["app"]] + o["args"]
    kube_request("POST", "/api/v1/namespaces/%s/pods" % ns, pod)
    print("stand-in: created pod %s in namespace %s (application %s)" % (md["name"], ns, app_id), file=sys.stderr)


def main():
    argv = sys.argv[1:]
    if os.environ.get("SPARK_STANDIN_ARGV"):
        with open(os.environ["SPARK_STANDIN_ARGV"], "w") as f:
            json.dump(argv, f)
    o = parse(argv)
    mode = o.get("deploy-mode", "client")
    master = o.get("master", "")
    if mode == "cluster" and master.startswith("k8s://"):
        cluster_k8s(o)
        return
    if mode != "client":
        fail("the stand-in runs cluster mode on Kubernetes only")
    app = o["app"]
    if app.startswith("local://"):
        app = app[len("local://"):]
    elif app.startswith("file://"):
        app = app[len("file://"):]
    if not app.endswith(".py"):
        fail("the stand-in runs Python applications only")
    os.execvp(sys.executable, [sys.executable, app] + o["args"])


if __name__ == "__main__":
    main()
