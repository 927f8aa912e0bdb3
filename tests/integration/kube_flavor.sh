#!/usr/bin/env bash
# The kubernetes flavor's operations (validate, render, submit, poll, cancel, cleanup) one by one
# against the real control plane of tests/testbeds/kubernetes, driven by
# build/tests/tools/flavor_drive without the submit command's follow loop: the handle, a second
# submit of the same run (409), each phase poll reports, cancel's foreground deletion, cleanup
# with and without keep, handles refused (another namespace, another run), an RBAC-limited
# user's 403 in the API server's words, and proxy-url through an HTTP CONNECT proxy.
# tests/integration/kube_submit.sh runs whole steps with `stepop submit`.
. "$(dirname "$0")/../lib.sh"

DRIVE=$ROOT/build/tests/tools/flavor_drive
[ -x "$DRIVE" ] || skip_all "build/tests/tools/flavor_drive is not built (make test builds it)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
start_kbed 1
podman_images || { not_ok "test images build"; done_testing; }
ok "test images $STEP_IMAGE"
kc() { "$KBED_KUBECTL" "$@"; }
drive() { "$DRIVE" kubernetes "$@"; }

# A file store the pods see at the same path (a hostPath volume).
STORE=$T/store
mkdir -p "$STORE/runs"
settings() { # EXTRA-SETTINGS: $T/settings.json
    cat >"$T/settings.json" <<JSON
{"pod_settings": {"volumes": [{"name": "store", "hostPath": {"path": "$STORE"}}],
                  "volume_mounts": [{"name": "store", "mountPath": "$STORE"}]}${1:+, $1}}
JSON
}
n=0
# new_run FIELDS: a run prefix with its manifest; sets RUN_ID, RUN_DIR, JOB.
new_run() {
    n=$((n + 1))
    RUN_ID=kflavor$$x$n
    RUN_DIR=$STORE/runs/$RUN_ID
    JOB=stepop-$RUN_ID
    mkdir -p "$RUN_DIR"
    manifest "$RUN_DIR/manifest.json" "file://$RUN_DIR" "\"image\":\"$STEP_IMAGE\",$1"
}
# wait_phase PHASE SECONDS: polls $T/handle.json until poll says PHASE; $T/poll.json is the last answer
wait_phase() {
    local i
    for i in $(seq $(($2 * 4))); do
        drive poll "$T/handle.json" "$T/settings.json" >"$T/poll.json" 2>"$T/poll.err" || return 1
        [ "$(jq_py "$T/poll.json" 'd["phase"]')" = "$1" ] && return 0
        sleep 0.25
    done
    return 1
}
poll_field() { jq_py "$T/poll.json" "d.get('$1')"; }

# --- validate, render ---
settings
new_run '"command":["true"]'
check "validate accepts a step" drive validate "$RUN_DIR/manifest.json" "$T/settings.json"
expect_rc 1 "validate without any kubeconfig fails before anything is made" \
    env -u KUBECONFIG HOME="$T/nohome" "$DRIVE" kubernetes validate "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "no Kubernetes configuration" "... and says where it looked"
drive render "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/render.json" 2>"$T/err"
is_eq "render: the POST of the Job" \
    "$(jq_py "$T/render.json" "d['namespace'], d['requests'][0]['method'], d['requests'][0]['url'], d['requests'][0]['body']['metadata']['name']")" \
    "default POST $KBED_SERVER/apis/batch/v1/namespaces/default/jobs $JOB"
is_eq "render: no Authorization header for a client certificate" "$(jq_py "$T/render.json" "'headers' in d['requests'][0]")" False
settings '"context": "kbed-token"'
drive render "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/render.json" 2>"$T/err"
is_eq "render: a token named, never shown" "$(jq_py "$T/render.json" "d['requests'][0]['headers']['Authorization']")" \
    "Bearer <token from kubeconfig user kbed-token>"
check "render: the token is nowhere" sh -c "! grep -qF '$KBED_ADMIN_TOKEN' '$T/render.json'"
is_eq "render created nothing" "$(kc get jobs -o name)" ""

# --- submit, poll to the end, cleanup ---
settings
new_run '"command":["sh","-c","echo working; sleep 4; exit 3"]'
drive submit "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/handle.json" 2>"$T/err" && ok "submit" || { not_ok "submit"; diag <"$T/err"; }
is_eq "the handle" "$(jq_py "$T/handle.json" "d['namespace'], d['job'], d['run_id'], d['run_uri'], len(d['uid']) > 0")" \
    "default $JOB $RUN_ID file://$RUN_DIR/ True"
is_eq "kubectl sees the Job's label" "$(kc get jobs -l "stepop.io/run-id=$RUN_ID" -o name)" "job.batch/$JOB"
expect_rc 1 "a second submit of the same run is refused" drive submit "$RUN_DIR/manifest.json" "$T/settings.json"
err_has "a Job named $JOB exists already in namespace default" "... naming the Job"
err_has "AlreadyExists" "... in the API server's words"
check "poll: running" wait_phase running 60
is_eq "... on the node" "$(poll_field message)" "pod $(kc get pods -l "job-name=$JOB" -o 'jsonpath={.items[0].metadata.name}') is running on node $KBED_NODE"
check "poll: exited" wait_phase exited 60
is_eq "... with exit code 3" "$(poll_field exit_code)" 3
printf '{"keep": true}' >"$T/keep.json"
check "cleanup with keep leaves the Job" drive cleanup "$T/handle.json" "$T/keep.json"
check "... there" kc get job "$JOB"
check "cleanup" drive cleanup "$T/handle.json" "$T/settings.json"
for _ in $(seq 40); do kc get job "$JOB" >/dev/null 2>&1 || break; sleep 0.25; done
expect_rc 1 "... deleted it" kc get job "$JOB"
check "poll: gone" wait_phase gone 20
check "cleanup again: nothing to do" drive cleanup "$T/handle.json" "$T/settings.json"

# --- a pod that cannot start ---
new_run '"command":["true"]'
sed -i "s|$STEP_IMAGE|localhost/stepop-test/no-such-image:1|" "$RUN_DIR/manifest.json"
drive submit "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/handle.json" 2>"$T/err" || { not_ok "submit"; diag <"$T/err"; }
check "poll: cannot start" wait_phase cannot_start 60
case $(poll_field message) in *ErrImagePull* | *ImagePullBackOff*) ok "... with the kubelet's reason" ;;
*) not_ok "... with the kubelet's reason"; diag <"$T/poll.json" ;; esac

# --- cancel: foreground deletion, the step gets SIGTERM ---
new_run '"command":["sh","-c","trap \"echo got TERM; exit 0\" TERM; echo sleeping; sleep 300 & wait"]'
drive submit "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/handle.json" 2>"$T/err" || { not_ok "submit"; diag <"$T/err"; }
wait_phase running 60
t0=$SECONDS
check "cancel" drive cancel "$T/handle.json" "$T/settings.json" 10s
check "poll: gone after cancel" wait_phase gone 60
if [ $((SECONDS - t0)) -lt 30 ]; then ok "... promptly ($((SECONDS - t0)) s)"; else not_ok "... promptly ($((SECONDS - t0)) s)"; fi
check "cancel of a Job gone: nothing to do" drive cancel "$T/handle.json" "$T/settings.json" 10s

# --- handles refused ---
new_run '"command":["sleep","60"]'
drive submit "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/handle.json" 2>"$T/err" || { not_ok "submit"; diag <"$T/err"; }
python3 -c "import json,sys; h=json.load(open(sys.argv[1])); h['run_id']='someone-else'; json.dump(h, open(sys.argv[2],'w'))" \
    "$T/handle.json" "$T/forged.json"
expect_rc 1 "cancel refuses a handle of another run" drive cancel "$T/forged.json" "$T/settings.json"
err_has "is not run someone-else's" "... saying what it found"
kc create namespace other >/dev/null
settings '"namespace": "other"'
expect_rc 1 "a handle for another namespace than the settings' is refused" drive cancel "$T/handle.json" "$T/settings.json"
err_has 'the handle names namespace "default", the settings namespace "other"' "... naming both"
check "the Job is still there" kc get job "$JOB"
settings
check "cancel with the right settings" drive cancel "$T/handle.json" "$T/settings.json" 0s

# --- an RBAC-limited user: the API server's words ---
settings '"context": "kbed-limited"'
expect_rc 1 "the limited user may not read the Job" drive poll "$T/handle.json" "$T/settings.json"
err_has 'cannot get resource "jobs" in API group "batch" in the namespace "default"' "... RBAC's message"
check "... and no token in it" sh -c "! grep -qF '$KBED_LIMITED_TOKEN' '$T/err'"

# --- proxy-url: the requests go through an HTTP CONNECT proxy ---
cat >"$T/proxy.py" <<'PY'
import socket, sys, threading
# A CONNECT-only proxy that logs each tunnel's target.
log = open(sys.argv[2], "a", buffering=1)
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(16)
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
def pipe(a, b):
    try:
        while (d := a.recv(65536)):
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try: s.shutdown(socket.SHUT_RDWR)
        except OSError: pass
def handle(c):
    head = b""
    while b"\r\n\r\n" not in head:
        d = c.recv(4096)
        if not d: return c.close()
        head += d
    line = head.split(b"\r\n")[0].decode()
    method, target = line.split()[:2]
    log.write(line + "\n")
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"); return c.close()
    host, port = target.rsplit(":", 1)
    u = socket.create_connection((host, int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    pipe(c, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
python3 "$T/proxy.py" "$T/proxy.port" "$T/proxy.log" &
on_exit "kill $!"
for _ in $(seq 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
python3 - "$KUBECONFIG" "http://127.0.0.1:$(cat "$T/proxy.port")" >"$T/proxied-kubeconfig" <<'PY'
import json, subprocess, sys
# The bed's kubeconfig (YAML: read through kubectl) with proxy-url on every cluster.
cfg = json.loads(subprocess.check_output([__import__("os").environ["KBED_KUBECTL"], "config", "view", "--raw", "-o", "json",
                                          "--kubeconfig", sys.argv[1]]))
for c in cfg["clusters"]:
    c["cluster"]["proxy-url"] = sys.argv[2]
print(json.dumps(cfg))
PY
settings
new_run '"command":["true"]'
KUBECONFIG=$T/proxied-kubeconfig drive submit "$RUN_DIR/manifest.json" "$T/settings.json" >"$T/handle.json" 2>"$T/err" &&
    ok "submit through the proxy" || { not_ok "submit through the proxy"; diag <"$T/err"; }
KUBECONFIG=$T/proxied-kubeconfig check "poll through the proxy" wait_phase exited 60
check "the proxy tunnelled them to the API server" grep -q "^CONNECT 127.0.0.1:$KBED_APISERVER_PORT HTTP/1.1" "$T/proxy.log"
KUBECONFIG=$T/proxied-kubeconfig check "cleanup through the proxy" drive cleanup "$T/handle.json" "$T/settings.json"

# --- ways of reaching the API server: a poll of that (deleted) Job is one GET each ---
cat >"$T/cert-plugin.py" <<PY
#!/usr/bin/env python3
# An exec credential plugin (v1beta1) that hands out the admin client certificate, no token.
import json
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                  "status": {"clientCertificateData": open("$KBED_ADMIN_CERT").read(),
                             "clientKeyData": open("$KBED_ADMIN_KEY").read()}}))
PY
chmod +x "$T/cert-plugin.py"
# reach NAME CLUSTER-FIELDS USER-FIELDS: $T/kc-NAME, a kubeconfig of one cluster and user
reach() {
    cat >"$T/kc-$1" <<JSON
{"apiVersion": "v1", "kind": "Config", "current-context": "c",
 "clusters": [{"name": "c", "cluster": {"server": "$KBED_SERVER"${2:+, $2}}}],
 "users": [{"name": "u", "user": {${3:-\"token\": \"$KBED_ADMIN_TOKEN\"}}}],
 "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
JSON
}
reach_poll() { KUBECONFIG=$T/kc-$1 "$DRIVE" kubernetes poll "$T/handle.json" "$T/settings.json"; }
wait_phase gone 30
reach cert-plugin "\"certificate-authority\": \"$KBED_CA\"" \
    "\"exec\": {\"apiVersion\": \"client.authentication.k8s.io/v1beta1\", \"command\": \"$T/cert-plugin.py\"}"
expect_rc 0 "an exec plugin's client certificate" reach_poll cert-plugin
reach server-name "\"certificate-authority\": \"$KBED_CA\", \"tls-server-name\": \"kubernetes.default.svc\""
expect_rc 0 "tls-server-name: a name of the serving certificate" reach_poll server-name
reach wrong-name "\"certificate-authority\": \"$KBED_CA\", \"tls-server-name\": \"not-in-the-certificate.example\""
expect_rc 1 "tls-server-name: a name the certificate lacks fails" reach_poll wrong-name
err_has "certificate" "... over the certificate"
reach insecure "\"insecure-skip-tls-verify\": true"
expect_rc 0 "insecure-skip-tls-verify without a CA" reach_poll insecure
reach no-ca ""
expect_rc 1 "neither a CA nor insecure-skip-tls-verify: the server is not trusted" reach_poll no-ca
err_has "certificate" "... over the certificate"
check "no token in any message" sh -c "! grep -rqF '$KBED_ADMIN_TOKEN' '$T'/err '$T'/out '$T'/poll.*"

# --- retries through stepop submit: poll says the Job goes on, so a failed attempt is not the end ---
mkdir -p "$T/cwd" && cd "$T/cwd" || exit 1
cat >stepop.json <<JSON
{"store": "file://$STORE", "default_operator": "kube",
 "operators": {"kube": {"flavor": "kubernetes", "settings": $(sed 's/}$/, "retries": 1}/' "$T/settings.json")}}}
JSON
expect_rc 0 "retries 1: a step that fails its first attempt succeeds on the second" "$STEPOP" submit \
    --image "$STEP_IMAGE" -- sh -c 'echo "attempt $STEPOP_ATTEMPT"; [ "$STEPOP_ATTEMPT" -ge 2 ] || exit 3'
out_has "attempt 2" "... the second attempt ran"
err_has "the platform runs the step again" "... and the submitter said so"
expect_rc 3 "retries 1: a step that always fails ends with its code after two attempts" "$STEPOP" submit \
    --image "$STEP_IMAGE" -- sh -c 'echo "try $STEPOP_ATTEMPT"; exit 3'
out_has "try 2" "... both attempts ran"
cd "$T" || exit 1

done_testing
