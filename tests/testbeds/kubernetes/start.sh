#!/bin/bash
# start.sh DIR: a Kubernetes 1.20 control plane on loopback (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) plus the test kubelet (kubelet.py, pods run in Podman),
# all state in DIR. Ports are picked free at run time, so several beds can run at once. Waits until
# pods can be created, then writes DIR/kubeconfig and DIR/env (source it) and prints DIR/env's path.
# stop.sh DIR stops what this started. README.md lists the environment that tunes it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
[ $# -eq 1 ] || { echo "usage: start.sh DIR" >&2; exit 2; }
mkdir -p "$1"
dir=$(cd "$1" && pwd)
cache=${STEPOP_TESTBED_CACHE:-/var/cache/stepop-testbeds}
node=${KBED_NODE:-kbed-node}
log() { echo "kubernetes testbed: $*" >&2; }
fail() {
    log "$*"
    "$here/stop.sh" "$dir" >/dev/null 2>&1 || true
    exit 1
}

# The binaries: KBED_BIN, else the complete cache entry of the highest version (build.sh makes it).
bin=${KBED_BIN:-}
if [ -z "$bin" ]; then
    while IFS= read -r d; do
        [ -x "$d/kube-apiserver" ] && [ -f "$d/../VERSION" ] && bin=$d
    done < <(printf '%s\n' "$cache"/kubernetes-*/bin | sort -V)
fi
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$bin/$b" ] || { log "no $b in '${bin:-$cache/kubernetes-*/bin}': run tests/testbeds/kubernetes/build.sh"; exit 1; }
done
[ ! -f "$dir/pids" ] || { log "$dir holds a running bed (stop.sh $dir first)"; exit 1; }
# A fresh bed each time: objects in an old etcd would carry tokens of an old service-account key.
rm -rf "$dir/etcd" "$dir/kubelet" "$dir/run" "$dir/pki"
mkdir -p "$dir/pki" "$dir/logs" "$dir/etcd" "$dir/run"
: >"$dir/pids"

# A loopback port nothing listens on, below the ephemeral range, not handed out before in this bed.
given=" "
free_port() {
    local p lo
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 11000 ] || lo=32768
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        case $given in *" $p "*) continue ;; esac
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
        given="$given$p "
        echo "$p"
        return
    done
}

# ---- PKI ----
pki=$dir/pki
ossl() { openssl "$@" >>"$dir/logs/openssl.log" 2>&1 || fail "openssl $1 failed (logs/openssl.log)"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=stepop-kbed-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt"
# cert NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA.
cert() {
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
        -keyout "$pki/$1.key" -out "$pki/$1.csr"
    printf '%s\n' "$3" >"$pki/$1.ext"
    ossl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 30 \
        -extfile "$pki/$1.ext" -out "$pki/$1.crt"
    rm -f "$pki/$1.csr"
}
client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin "/O=system:masters/CN=kubernetes-admin" "$client"
cert controller-manager "/CN=system:kube-controller-manager" "$client"
cert scheduler "/CN=system:kube-scheduler" "$client"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
cert kubelet "/O=system:nodes/CN=system:node:$node" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:$node"
ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$pki/sa.key"
ossl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
# Static tokens: one for an admin (system:masters) and one for a user with no rights of its own.
admin_token=admin-$(openssl rand -hex 16)
limited_token=limited-$(openssl rand -hex 16)
{
    echo "$admin_token,kbed-token-admin,uid-token-admin,\"system:masters\""
    echo "$limited_token,kbed-limited,uid-limited"
} >"$pki/tokens.csv"
printf '%s' "$admin_token" >"$pki/admin.token"
printf '%s' "$limited_token" >"$pki/limited.token"
chmod 600 "$pki"/*.key "$pki"/*.token "$pki/tokens.csv"

# ---- processes ----
# launch NAME CMD...: runs CMD in the background with its log in logs/NAME.log, pid in DIR/pids.
launch() {
    local name=$1
    shift
    (cd "$dir/run" && exec setsid "$@" </dev/null >"$dir/logs/$name.log" 2>&1) &
    echo "$name $!" >>"$dir/pids"
}
alive() { # NAME: the process is still running
    local pid
    pid=$(awk -v n="$1" '$1 == n {print $2}' "$dir/pids")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}
# wait_for NAME SECONDS CMD...: until CMD succeeds; fails when process NAME died or time ran out.
wait_for() {
    local name=$1 secs=$2
    shift 2
    for _ in $(seq $((secs * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        alive "$name" || fail "$name exited; last lines of $dir/logs/$name.log:
$(tail -15 "$dir/logs/$name.log")"
        sleep 0.2
    done
    fail "$name not ready after ${secs}s; last lines of $dir/logs/$name.log:
$(tail -15 "$dir/logs/$name.log")"
}

etcd_port=$(free_port)
etcd_peer=$(free_port)
api_port=$(free_port)
kubelet_port=$(free_port)
server=https://127.0.0.1:$api_port

launch etcd "$bin/etcd" --name kbed --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "kbed=http://127.0.0.1:$etcd_peer" --initial-cluster-state new
wait_for etcd 20 curl -sf "http://127.0.0.1:$etcd_port/health"

issuer=https://kubernetes.default.svc.cluster.local
launch kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" --insecure-port 0 \
    --cert-dir "$dir/run" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --token-auth-file "$pki/tokens.csv" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer "$issuer" --api-audiences "$issuer" \
    --service-account-signing-key-file "$pki/sa.key" --service-account-key-file "$pki/sa.pub" \
    --service-cluster-ip-range 10.0.0.0/24 --endpoint-reconciler-type none --allow-privileged \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --profiling=false --v "${KBED_VERBOSITY:-1}"
wait_for kube-apiserver 60 curl -sf --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server/readyz"

# kubeconfig FILE USER-YAML: a one-user kubeconfig for the components.
component_kubeconfig() {
    cat >"$dir/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kbed
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$pki/$1.crt", client-key: "$pki/$1.key"}
contexts:
- name: kbed
  context: {cluster: kbed, user: $1}
current-context: kbed
KC
}
component_kubeconfig controller-manager
component_kubeconfig scheduler
ca_data=$(base64 -w0 <"$pki/ca.crt")
cat >"$dir/kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kbed
  cluster:
    server: "$server"
    certificate-authority: "$pki/ca.crt"
- name: kbed-data
  cluster:
    server: "$server"
    certificate-authority-data: "$ca_data"
users:
- name: kbed-admin
  user:
    client-certificate: "$pki/admin.crt"
    client-key: "$pki/admin.key"
- name: kbed-admin-data
  user:
    client-certificate-data: "$(base64 -w0 <"$pki/admin.crt")"
    client-key-data: "$(base64 -w0 <"$pki/admin.key")"
- name: kbed-token
  user:
    token: "$admin_token"
- name: kbed-token-file
  user:
    tokenFile: "$pki/admin.token"
- name: kbed-limited
  user:
    token: "$limited_token"
contexts:
- name: kbed-admin
  context: {cluster: kbed, user: kbed-admin, namespace: default}
- name: kbed-admin-data
  context: {cluster: kbed-data, user: kbed-admin-data, namespace: default}
- name: kbed-token
  context: {cluster: kbed, user: kbed-token, namespace: default}
- name: kbed-token-file
  context: {cluster: kbed, user: kbed-token-file, namespace: default}
- name: kbed-limited
  context: {cluster: kbed, user: kbed-limited, namespace: default}
current-context: kbed-admin
KC
chmod 600 "$dir"/*.kubeconfig "$dir/kubeconfig"

launch kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
    --use-service-account-credentials --service-account-private-key-file "$pki/sa.key" \
    --root-ca-file "$pki/ca.crt" --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --profiling=false --v "${KBED_VERBOSITY:-1}"
launch kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" --leader-elect=false --port 0 --secure-port 0 \
    --profiling=false --v "${KBED_VERBOSITY:-1}"

kc() { "$bin/kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
# 1.20 admits no pod until the namespace's default ServiceAccount and its token Secret exist.
sa_ready() {
    local s
    s=$(kc get serviceaccount default -o 'jsonpath={.secrets[0].name}') && [ -n "$s" ] && kc get secret "$s"
}
wait_for kube-controller-manager 60 sa_ready
alive kube-scheduler || fail "kube-scheduler exited: $(tail -15 "$dir/logs/kube-scheduler.log")"

# ---- the test kubelet ----
instance=kbed-$(openssl rand -hex 6)
if [ "${KBED_KUBELET:-1}" = 1 ]; then
    podman_dir=${PODMAN_DIR:-$root/build/podman}
    mkdir -p "$podman_dir/root" "$podman_dir/run" "$podman_dir/tmp"
    if [ -z "${CONTAINERS_CONF:-}" ]; then
        # As tests/lib.sh's start_podman: runc, and ulimits no higher than podman's own.
        nofile=$(ulimit -Hn)
        nproc=$(ulimit -Hu)
        [ "$nofile" = unlimited ] && nofile=1048576
        { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
        printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\nevents_logger = "file"\n' \
            "$nofile" "$nofile" "$nproc" "$nproc" >"$dir/containers.conf"
        export CONTAINERS_CONF=$dir/containers.conf
    fi
    labels=(--container-label "stepop-kbed=$instance")
    [ -z "${KBED_CONTAINER_LABEL:-}" ] || labels+=(--container-label "$KBED_CONTAINER_LABEL")
    launch kubelet python3 "$here/kubelet.py" --server "$server" --ca "$pki/ca.crt" \
        --cert "$pki/kubelet.crt" --key "$pki/kubelet.key" --node "$node" --port "$kubelet_port" \
        --cpu "${KBED_NODE_CPU:-4}" --memory "${KBED_NODE_MEMORY:-8Gi}" \
        --gpus "${KBED_NODE_GPUS:-2}" --gpu-resource "${KBED_GPU_RESOURCE:-nvidia.com/gpu}" \
        --podman-dir "$podman_dir" --state "$dir/kubelet" "${labels[@]}"
    node_ready() {
        [ "$(kc get node "$node" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
    }
    wait_for kubelet 30 node_ready
fi

cat >"$dir/env" <<ENV
# The Kubernetes test bed in $dir (tests/testbeds/kubernetes/start.sh); source this file.
export KUBECONFIG="$dir/kubeconfig"
export KBED_DIR="$dir"
export KBED_BIN="$bin"
export KBED_KUBECTL="$bin/kubectl"
export KBED_SERVER="$server"
export KBED_APISERVER_PORT=$api_port
export KBED_ETCD_PORT=$etcd_port
export KBED_KUBELET_PORT=$kubelet_port
export KBED_NODE="$node"
export KBED_INSTANCE=$instance
export KBED_CA="$pki/ca.crt"
export KBED_ADMIN_CERT="$pki/admin.crt"
export KBED_ADMIN_KEY="$pki/admin.key"
export KBED_ADMIN_TOKEN="$admin_token"
export KBED_ADMIN_TOKEN_FILE="$pki/admin.token"
export KBED_LIMITED_TOKEN="$limited_token"
export KBED_LIMITED_USER=kbed-limited
export KBED_SA_KEY="$pki/sa.key"
export KBED_LOGS="$dir/logs"
ENV
echo "$dir/env"
