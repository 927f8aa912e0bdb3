#!/usr/bin/env bash
# The Kubernetes test bed (tests/testbeds/kubernetes): a real 1.20 control plane on loopback and
# the test kubelet running pods in Podman. Jobs made with kubectl complete, fail, get OOM-killed,
# wait for GPUs the node lacks, fail to pull, stream logs through the API server and delete in the
# foreground. Skipped until build.sh has filled the cache (tests/lib.sh start_kbed).
. "$(dirname "$0")/../lib.sh"

start_kbed 1
IMAGE=$KBED_BUSYBOX
kc() { "$KBED_KUBECTL" "$@"; }
jp() { kc get "$1" -o "jsonpath=$2" 2>/dev/null; }

is_eq "node Ready" "$(jp "node/$KBED_NODE" '{.status.conditions[?(@.type=="Ready")].status}')" True
is_eq "node has 1 nvidia.com/gpu" "$(jp "node/$KBED_NODE" '{.status.allocatable.nvidia\.com/gpu}')" 1
check "token user signs in" kc --context kbed-token get namespace default
check "tokenFile user signs in" kc --context kbed-token-file get namespace default
check "inline certificate user signs in" kc --context kbed-admin-data get namespace default
expect_rc 1 "the limited user may not list pods" kc --context kbed-limited get pods
err_has 'User "kbed-limited" cannot list resource "pods"' "... RBAC's words"

# job NAME BACKOFF POD-SPEC-EXTRA CONTAINER-EXTRA: a batch/v1 Job with one busybox container.
job() {
    cat <<YAML | kc create -f - >/dev/null
apiVersion: batch/v1
kind: Job
metadata: {name: $1}
spec:
  backoffLimit: $2
  template:
    metadata:
      labels: {kbed-test: "$1"}
      annotations: {kbed/note: from-annotation}
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 5
$3
      containers:
      - name: step
        image: $IMAGE
$4
YAML
}
job hello 0 "" "        command: [/bin/sh, -c, 'echo hello from \$(POD_NAME) in \$POD_NS note=\$NOTE; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; echo second line']
        env:
        - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
        - {name: NOTE, valueFrom: {fieldRef: {fieldPath: \"metadata.annotations['kbed/note']\"}}}
        resources: {limits: {memory: 64Mi}}"
job fails 0 "" "        args: [/bin/sh, -c, 'echo failing; exit 3']"
job oom 0 "" "        command: [/bin/sh, -c, 'tail /dev/zero']
        resources: {limits: {memory: 16Mi}}"
job gpus 0 "" "        command: ['true']
        resources: {limits: {nvidia.com/gpu: 2}}"
cat <<YAML | kc create -f - >/dev/null
apiVersion: batch/v1
kind: Job
metadata: {name: nopull}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: step, image: "localhost/stepop-test/no-such-image:1", command: ["true"]}]
YAML
job nosecret 0 "" "        command: ['true']
        env: [{name: X, valueFrom: {secretKeyRef: {name: no-such-secret, key: x}}}]"
# The trap lingers a second after its line: podman logs --follow (the test kubelet's log stream)
# can end as the container exits, before it has read the container's last line.
job sleeper 0 "" "        command: [/bin/sh, -c, 'trap \"echo got TERM; sleep 1; exit 0\" TERM; echo sleeping; sleep 300 & wait']"

pod_of() { kc get pods -l "job-name=$1" -o 'jsonpath={.items[0].metadata.name}' 2>/dev/null; }
check "a Job completes" kc wait --for=condition=complete job/hello --timeout=60s
p=$(pod_of hello)
kc logs "$p" >"$T/out" 2>"$T/err"
out_has "hello from $p in default note=from-annotation" "kubectl logs: env with fieldRefs, \$(VAR) in command"
is_eq "the service-account token volume is mounted" "$(sed -n 2p "$T/out")" default
is_eq "kubectl logs --tail=1" "$(kc logs --tail=1 "job/hello" 2>&1)" "second line"
is_eq "kubectl logs --limit-bytes=5" "$(kc logs --limit-bytes=5 "$p" 2>&1)" hello
kc logs --timestamps --tail=1 "$p" >"$T/out" 2>&1
if grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+[^ ]* second line$' "$T/out"; then ok "kubectl logs --timestamps"; else
    not_ok "kubectl logs --timestamps"; diag <"$T/out"; fi
is_eq "exit code 0, reason Completed" \
    "$(jp "pod/$p" '{.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}')" \
    "Succeeded 0 Completed"

check "a failing Job (backoffLimit 0) fails" kc wait --for=condition=failed job/fails --timeout=60s
is_eq "... with BackoffLimitExceeded" "$(jp job/fails '{.status.conditions[?(@.type=="Failed")].reason}')" BackoffLimitExceeded
p=$(pod_of fails)
is_eq "... its pod Failed with exit 3, reason Error" \
    "$(jp "pod/$p" '{.status.phase} {.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}')" \
    "Failed 3 Error"
is_eq "... and its log" "$(kc logs "$p" 2>&1)" failing

check "an OOM-killed Job fails" kc wait --for=condition=failed job/oom --timeout=60s
p=$(pod_of oom)
is_eq "... exit 137, reason OOMKilled" \
    "$(jp "pod/$p" '{.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}')" \
    "137 OOMKilled"

# The scheduler's own words for a GPU the node lacks.
msg=""
for _ in $(seq 60); do
    p=$(pod_of gpus)
    [ -n "$p" ] && msg=$(kc get events --field-selector "involvedObject.name=$p,reason=FailedScheduling" \
        -o 'jsonpath={.items[*].message}' 2>/dev/null)
    [ -n "$msg" ] && break
    sleep 0.5
done
case $msg in *"Insufficient nvidia.com/gpu"*) ok "more GPUs than the node has: FailedScheduling ($msg)" ;;
*) not_ok "more GPUs than the node has: FailedScheduling"; echo "#   events: $msg" ;; esac
is_eq "... the pod stays Pending, unbound" "$(jp "pod/$p" '{.status.phase} {.spec.nodeName}')" "Pending "

reason=""
for _ in $(seq 40); do
    p=$(pod_of nopull)
    reason=$(jp "pod/$p" '{.status.containerStatuses[0].state.waiting.reason}')
    case $reason in ErrImagePull | ImagePullBackOff) break ;; esac
    sleep 0.5
done
case $reason in ErrImagePull | ImagePullBackOff) ok "a missing image: waiting reason $reason" ;;
*) not_ok "a missing image: waiting reason ErrImagePull"; echo "#   got: $reason" ;; esac

reason=""
for _ in $(seq 40); do
    p=$(pod_of nosecret)
    reason=$(jp "pod/$p" '{.status.containerStatuses[0].state.waiting.reason}: {.status.containerStatuses[0].state.waiting.message}')
    case $reason in CreateContainerConfigError*) break ;; esac
    sleep 0.5
done
is_eq "a missing secret: CreateContainerConfigError" "$reason" 'CreateContainerConfigError: secret "no-such-secret" not found'

for _ in $(seq 60); do
    p=$(pod_of sleeper)
    [ "$(jp "pod/$p" '{.status.phase}')" = Running ] && kc logs "$p" 2>/dev/null | grep -q sleeping && break
    sleep 0.5
done
is_eq "a sleeping Job runs" "$(jp "pod/$p" '{.status.phase}')" Running
kc logs -f "$p" >"$T/follow.out" 2>&1 &
follow=$!
# Delete only once the follower is attached (it has printed the line so far): on a busy machine
# kubectl can take longer to start than the deletion takes, and would find no pod.
for _ in $(seq 60); do
    grep -q sleeping "$T/follow.out" 2>/dev/null && break
    sleep 0.5
done
t0=$SECONDS
check "foreground deletion of a running Job completes" kc delete job sleeper --cascade=foreground --timeout=60s
is_eq "... the Job and its pod are gone" "$(kc get job sleeper -o name 2>/dev/null; kc get pod "$p" -o name 2>/dev/null)" ""
# The step's trap ends it at once: nothing waits out its 300 s sleep.
if [ $((SECONDS - t0)) -lt 20 ]; then ok "... promptly ($((SECONDS - t0)) s)"; else
    not_ok "... promptly (took $((SECONDS - t0)) s)"; fi
wait "$follow"
is_eq "kubectl logs -f saw the step's TERM trap run" "$(cat "$T/follow.out")" "sleeping
got TERM"
check "foreground deletion of pending and finished Jobs completes" \
    kc delete job gpus nopull nosecret hello fails oom --cascade=foreground --timeout=60s
check "no pods left" test -z "$(kc get pods -o name)"

started=$(awk '{print $2}' "$T/bed/pids" | paste -sd, -)
"$ROOT/tests/testbeds/kubernetes/stop.sh" "$T/bed"
check "stop.sh stops every process it started (sessions $started)" sh -c "! ps -o pid= -s '$started' | grep -q ."
check "... and removes the kubelet's containers" test -z "$(podman_cli ps -aq --filter "label=stepop-kbed=$KBED_INSTANCE")"
done_testing
