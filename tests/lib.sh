# Shared helpers for the integration tests (sourced). Each test prints TAP lines; servers it
# starts live in its own temporary directory and are stopped when it exits.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPOP=${STEPOP:-$ROOT/build/stepop}
T=$(mktemp -d "${TMPDIR:-/tmp}/stepop-test.XXXXXX")
export STEPOP_NO_PROGRESS=1 STEPOP_HTTP_RETRY_BASE=${STEPOP_HTTP_RETRY_BASE:-20ms}
export STEPOP_HTTP_RETRY_MAX=${STEPOP_HTTP_RETRY_MAX:-200ms}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy no_proxy NO_PROXY
tap_n=0
tap_failed=0
cleanup_cmds=()

cleanup() {
    local i
    for ((i = ${#cleanup_cmds[@]} - 1; i >= 0; i--)); do eval "${cleanup_cmds[$i]}" >/dev/null 2>&1 || true; done
    cleanup_cmds=()
    [ -n "${KEEP_TEST_DIR:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
on_exit() { cleanup_cmds+=("$1"); }

ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=$((tap_failed + 1)); echo "not ok $tap_n - $*"; }
diag() { sed 's/^/#   /'; }
# check DESC CMD...: passes when CMD succeeds
check() {
    local desc=$1
    shift
    if "$@" >"$T/.check.out" 2>&1; then ok "$desc"; else not_ok "$desc"; diag <"$T/.check.out"; fi
}
# expect_rc WANT DESC CMD...: runs CMD with stdout in $T/out and stderr in $T/err
expect_rc() {
    local want=$1 desc=$2 rc
    shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if [ "$rc" = "$want" ]; then ok "$desc"; else
        not_ok "$desc (exit $rc, want $want)"
        diag <"$T/err"
    fi
}
# err_has TEXT DESC: the last expect_rc's stderr contains TEXT
err_has() { if grep -qF -- "$1" "$T/err"; then ok "$2"; else not_ok "$2"; echo "#   stderr lacks: $1"; diag <"$T/err"; fi; }
out_has() { if grep -qF -- "$1" "$T/out"; then ok "$2"; else not_ok "$2"; echo "#   stdout lacks: $1"; diag <"$T/out"; fi; }
done_testing() {
    echo "1..$tap_n"
    cleanup
    trap - EXIT
    [ "$tap_failed" -eq 0 ]
    exit $?
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

# A free loopback port (bind-tested by the server itself; this only avoids obvious clashes).
# Below the kernel's ephemeral range, so no outgoing connection can hold the port by the time a
# server binds it; nothing listening there yet.
free_port() {
    local p lo
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$lo" -gt 11000 ] || lo=32768
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

wait_http() { # URL: wait up to 10 s for any HTTP answer
    local i
    for i in $(seq 100); do
        curl -s -o /dev/null "$1" --max-time 1 -k && return 0
        sleep 0.1
    done
    echo "# server at $1 did not come up" >&2
    return 1
}

# start_nginx [tls]: WebDAV nginx serving $NGINX_ROOT at $NGINX_URL. A test may run one plain
# and one TLS server (each call sets the NGINX_ variables anew).
start_nginx() {
    local tls=${1:-} dir="$T/nginx${1:+-$1}" mod=""
    mkdir -p "$dir/www" "$dir/tmp" "$dir/logs"
    for m in /usr/lib/nginx/modules/ngx_http_dav_ext_module.so /usr/share/nginx/modules/ngx_http_dav_ext_module.so; do
        [ -f "$m" ] && mod="load_module $m;" && break
    done
    local listen ssl="" scheme=http
    NGINX_PORT=$(free_port)
    listen="listen 127.0.0.1:$NGINX_PORT"
    if [ "$tls" = tls ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1 || return 1
        listen="$listen ssl"
        ssl="ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;"
        scheme=https
        NGINX_CERT=$dir/cert.pem
    fi
    cat >"$dir/nginx.conf" <<CONF
$mod
worker_processes 1;
daemon on;
user root;
pid $dir/nginx.pid;
error_log $dir/logs/error.log;
events { worker_connections 256; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp;
    client_max_body_size 0;
    server {
        $listen;
        $ssl
        root $dir/www;
        location / {
            dav_methods PUT DELETE MKCOL;
            $( [ -n "$mod" ] && echo "dav_ext_methods PROPFIND OPTIONS;" )
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }
    }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir" 2>"$dir/logs/start.log" || { cat "$dir/logs/start.log" >&2; return 1; }
    on_exit "kill \$(cat $dir/nginx.pid)"
    NGINX_ROOT=$dir/www
    NGINX_URL=$scheme://127.0.0.1:$NGINX_PORT
    [ "$tls" = tls ] && NGINX_URL=https://localhost:$NGINX_PORT
    wait_http "$NGINX_URL/"
}

# start_faulty: tests/servers/faulty.js serving $FAULTY_ROOT at $FAULTY_URL.
start_faulty() {
    FAULTY_ROOT=$T/faulty
    mkdir -p "$FAULTY_ROOT"
    node "$ROOT/tests/servers/faulty.js" --root "$FAULTY_ROOT" --port 0 --port-file "$T/faulty.port" \
        >"$T/faulty.log" 2>&1 &
    on_exit "kill $!"
    local i
    for i in $(seq 100); do [ -s "$T/faulty.port" ] && break; sleep 0.05; done
    FAULTY_URL=http://127.0.0.1:$(cat "$T/faulty.port")
    wait_http "$FAULTY_URL/_log"
}
faulty_log() { curl -s "$FAULTY_URL/_log"; }
faulty_reset() { curl -s -X POST "$FAULTY_URL/_reset" >/dev/null; }

# A tree with everything the round-trip tests care about.
make_tree() { # DIR [big-file-MiB]
    local d=$1 mib=${2:-1}
    mkdir -p "$d/nested/deeper/deepest" "$d/empty" "$d/nested/empty too"
    printf 'hello\n' >"$d/hello.txt"
    printf '#!/bin/sh\necho run\n' >"$d/run.sh"
    chmod 755 "$d/run.sh"
    chmod 600 "$d/hello.txt"
    ln -s hello.txt "$d/link-to-hello"
    ln -s ../../hello.txt "$d/nested/deeper/up-link"
    ln -s nested/deeper "$d/dir-link"
    ln "$d/run.sh" "$d/nested/run-hardlink.sh"
    head -c $((mib * 1048576)) /dev/urandom >"$d/nested/deeper/deepest/weights.bin"
    printf 'spaces and unicode: é ü 日本\n' >"$d/nested/file with spaces é.txt"
    touch -d '2001-02-03 04:05:06' "$d/hello.txt"
}

# same_tree A B: contents, types, modes, link targets and mtimes of files agree.
same_tree() {
    diff -r --no-dereference "$1" "$2" >/dev/null || { echo "contents differ"; diff -r --no-dereference "$1" "$2" | head; return 1; }
    local a b
    a=$(cd "$1" && find . -printf '%p %y %m %l\n' | sort)
    b=$(cd "$2" && find . -printf '%p %y %m %l\n' | sort)
    [ "$a" = "$b" ] || { echo "metadata differs"; diff <(echo "$a") <(echo "$b"); return 1; }
    a=$(cd "$1" && find . -type f -printf '%p %T@\n' | sed 's/\.[0-9]*$//' | sort)
    b=$(cd "$2" && find . -type f -printf '%p %T@\n' | sed 's/\.[0-9]*$//' | sort)
    [ "$a" = "$b" ] || { echo "mtimes differ"; diff <(echo "$a") <(echo "$b"); return 1; }
}

# manifest FILE RUN_URI JSON-FIELDS: writes a stepop/v1 manifest (run_id from the URI's last part).
manifest() {
    local file=$1 uri=$2 fields=${3:-}
    local id
    id=$(basename "$uri")
    printf '{"api_version":"stepop/v1","run_id":"%s","run_uri":"%s/"%s}\n' "$id" "${uri%/}" "${fields:+,$fields}" >"$file"
}
# jq_py FILE EXPR: prints a Python expression over the JSON document d.
jq_py() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
# is_eq DESC GOT WANT
is_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1"; echo "#   got:  $2"; echo "#   want: $3"; fi; }

# A python3 that has Debian's botocore (the official SigV4 signer the S3 proxy checks with).
botocore_python() {
    local py
    for py in /usr/bin/python3 python3; do
        "$py" -c 'import botocore' >/dev/null 2>&1 && { echo "$py"; return 0; }
    done
    return 1
}

# start_s3rver DIR BUCKET LOG: s3rver on a port it picks (port 0; it names it in its first line),
# stopped at exit; sets S3RVER_PORT.
start_s3rver() {
    local i
    S3RVER_PORT=""
    node "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" -d "$1" -a 127.0.0.1 -p 0 -s \
        --configure-bucket "$2" >"$3" 2>&1 &
    on_exit "kill $!"
    for i in $(seq 200); do
        S3RVER_PORT=$(sed -n 's/^S3rver listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$3")
        [ -n "$S3RVER_PORT" ] && return 0
        sleep 0.05
    done
    echo "# s3rver did not start" >&2
    cat "$3" >&2
    return 1
}

# start_s3: s3rver (bucket "test") behind tests/servers/s3proxy.py, which verifies every SigV4
# signature with botocore and injects faults on request. Exports what stepop needs to use it
# with static keys; the credential tests replace the keys. $S3_URL is the proxy, $S3_ROOT
# s3rver's data directory, $S3_KEYS the file of keys the proxy accepts.
S3_AKID=AKIDSTEPOPTEST0000001
S3_SECRET='stepop/Test+Secret=Key0000000000000000000'
start_s3() {
    local py s3port i
    py=$(botocore_python) || { echo "# python3-botocore is missing (make deps)" >&2; return 1; }
    [ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || { echo "# s3rver is missing (make deps)" >&2; return 1; }
    S3_ROOT=$T/s3rver
    S3_KEYS=$T/s3keys.jsonl
    mkdir -p "$S3_ROOT"
    printf '{"akid": "%s", "secret": "%s", "token": null, "expires": null}\n' "$S3_AKID" "$S3_SECRET" >"$S3_KEYS"
    start_s3rver "$S3_ROOT" test "$T/s3rver.log" || return 1
    s3port=$S3RVER_PORT
    "$py" "$ROOT/tests/servers/s3proxy.py" --upstream "127.0.0.1:$s3port" --root "$S3_ROOT" --keys "$S3_KEYS" \
        --port-file "$T/s3proxy.port" >"$T/s3proxy.log" 2>&1 &
    on_exit "kill $!"
    for i in $(seq 100); do [ -s "$T/s3proxy.port" ] && break; sleep 0.05; done
    S3_URL=http://127.0.0.1:$(cat "$T/s3proxy.port")
    wait_http "$S3_URL/_/log" || return 1
    s3_env_static
}
# The environment of a user with static keys and nothing else configured.
s3_env_static() {
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN \
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN \
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE AWS_ENDPOINT_URL AWS_ENDPOINT_URL_STS AWS_DEFAULT_REGION \
        AWS_ROLE_SESSION_NAME AWS_EC2_METADATA_SERVICE_ENDPOINT STEPOP_NOW STEPOP_S3_ADDRESSING STEPOP_S3_CHECKSUM \
        STEPOP_S3_SIGN_PAYLOAD STEPOP_S3_CONCURRENCY STEPOP_S3_MULTIPART_THRESHOLD STEPOP_S3_PART_SIZE
    export AWS_ENDPOINT_URL_S3=$S3_URL AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$S3_AKID AWS_SECRET_ACCESS_KEY=$S3_SECRET
    export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=$T/no-aws-config AWS_SHARED_CREDENTIALS_FILE=$T/no-aws-credentials
}
s3_log() { curl -s "$S3_URL/_/log"; }
s3_reset() { curl -s -X POST "$S3_URL/_/reset" >/dev/null; }
s3_faults() { curl -s -X POST --data-binary "$1" "$S3_URL/_/faults" >/dev/null; }
s3_uploads() { curl -s "$S3_URL/_/uploads"; }
# s3_count PYTHON-EXPR: requests in the proxy's log for which EXPR (over e) holds
s3_count() { s3_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }
# The file s3rver keeps an object's bytes in.
s3_object_file() { # BUCKET KEY
    local dir base
    dir=$(dirname "$2")
    base=$(basename "$2")
    [ "$dir" = . ] && echo "$S3_ROOT/$1/$base._S3rver_object" || echo "$S3_ROOT/$1/$dir/$base._S3rver_object"
}

# start_awsfake [ARGS...]: tests/servers/awsfake.py (STS, container endpoint, IMDSv2) at
# $AWSFAKE_URL, handing out keys that the S3 proxy accepts (appended to $S3_KEYS).
start_awsfake() {
    local i pf=$T/awsfake.$RANDOM.port
    python3 "$ROOT/tests/servers/awsfake.py" --port-file "$pf" --keys "$S3_KEYS" "$@" >>"$T/awsfake.log" 2>&1 &
    on_exit "kill $!"
    AWSFAKE_PID=$!
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    AWSFAKE_URL=http://127.0.0.1:$(cat "$pf")
    wait_http "$AWSFAKE_URL/_/log"
}
awsfake_count() { curl -s "$AWSFAKE_URL/_/log" | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }

# start_gcs_emulator: firebase-tools' Cloud Storage emulator (its storage app alone, no Java rules
# runtime: tests/servers/gcs_emulator.js) at $GCS_EMULATOR_URL, its blobs under
# $GCS_EMULATOR_BLOBS; exports STORAGE_EMULATOR_HOST with the scheme, which the npm client needs.
start_gcs_emulator() {
    local port
    [ -f "$ROOT/tests/servers/node_modules/firebase-tools/lib/emulator/storage/index.js" ] ||
        { echo "# firebase-tools is missing (make deps)" >&2; return 1; }
    port=$(free_port)
    mkdir -p "$T/gcs-tmp"
    TMPDIR=$T/gcs-tmp node "$ROOT/tests/servers/gcs_emulator.js" "$port" >"$T/gcs-emulator.log" 2>&1 &
    on_exit "kill $!"
    GCS_EMULATOR_URL=http://127.0.0.1:$port
    GCS_EMULATOR_BLOBS=$T/gcs-tmp/firebase/storage/blobs
    # Up to 30 s: Node loads much of firebase-tools first, slow on a loaded machine.
    wait_http "$GCS_EMULATOR_URL/storage/v1/b" 2>/dev/null || wait_http "$GCS_EMULATOR_URL/storage/v1/b" 2>/dev/null ||
        wait_http "$GCS_EMULATOR_URL/storage/v1/b" || { cat "$T/gcs-emulator.log" >&2; return 1; }
    unset STEPOP_GCS_ENDPOINT STEPOP_GCS_CHUNK_SIZE STEPOP_GCS_PART_SIZE STEPOP_GCS_UPLOAD_THRESHOLD
    export STORAGE_EMULATOR_HOST=$GCS_EMULATOR_URL
}

# start_sagemaker_fake [ARGS...]: tests/servers/sagemaker_fake.py at $SAGEMAKER_FAKE_URL (SageMaker
# and CloudWatch Logs, checked against botocore's models, jobs run with Podman), accepting the keys
# in $S3_KEYS; needs start_s3 (the keys) and start_podman (storage, containers.conf, the label).
# Exports AWS_ENDPOINT_URL_SAGEMAKER and AWS_ENDPOINT_URL_CLOUDWATCH_LOGS. ARGS go to the fake
# (--container-credentials-url, --container-env, --stop-grace ...).
start_sagemaker_fake() {
    local py i pf=$T/sagemaker.$RANDOM.port
    py=$(botocore_python) || { echo "# python3-botocore is missing (make deps)" >&2; return 1; }
    "$py" "$ROOT/tests/servers/sagemaker_fake.py" --port-file "$pf" --keys "$S3_KEYS" --podman-dir "$PODMAN_DIR" \
        --jobs-dir "$T/sagemaker-jobs" --container-label "stepop-test.owner=$PODMAN_OWNER" "$@" \
        >>"$T/sagemaker.log" 2>&1 &
    SAGEMAKER_FAKE_PID=$!
    # SIGTERM: the fake removes its containers before it exits.
    on_exit "kill $SAGEMAKER_FAKE_PID; wait $SAGEMAKER_FAKE_PID"
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    SAGEMAKER_FAKE_URL=http://127.0.0.1:$(cat "$pf")
    wait_http "$SAGEMAKER_FAKE_URL/_/log" || return 1
    export AWS_ENDPOINT_URL_SAGEMAKER=$SAGEMAKER_FAKE_URL AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=$SAGEMAKER_FAKE_URL
}
sagemaker_script() { curl -s -X POST --data-binary "$1" "$SAGEMAKER_FAKE_URL/_/script" >/dev/null; }
sagemaker_log() { curl -s "$SAGEMAKER_FAKE_URL/_/log"; }
sagemaker_jobs() { curl -s "$SAGEMAKER_FAKE_URL/_/jobs"; }

# A python3 with Debian's python3-protobuf (the Vertex fake parses bodies with it).
protobuf_python() {
    local py
    for py in /usr/bin/python3 python3; do
        "$py" -c 'import google.protobuf.json_format' >/dev/null 2>&1 && { echo "$py"; return 0; }
    done
    return 1
}

# start_vertex_fake [ARGS...]: tests/servers/vertex_fake.py at $VERTEX_FAKE_URL ($VERTEX_FAKE_HOST
# is host:port): Vertex AI's JobService custom jobs and Cloud Logging's entries:list, bodies
# checked against the .proto files of npm @google-cloud/aiplatform (compiled by protoc into
# build/protos), jobs run with Podman. Needs start_podman. ARGS go to the fake (--tokens FILE or
# --tokeninfo URL: which bearer tokens it takes; --container-env, --stop-grace ...).
start_vertex_fake() {
    local py i pf=$T/vertex.$RANDOM.port
    py=$(protobuf_python) || { echo "# python3-protobuf is missing (make deps)" >&2; return 1; }
    command -v protoc >/dev/null || { echo "# protoc is missing (make deps)" >&2; return 1; }
    "$py" "$ROOT/tests/servers/vertex_fake.py" --port-file "$pf" --podman-dir "$PODMAN_DIR" \
        --jobs-dir "$T/vertex-jobs" --proto-cache "$ROOT/build/protos" \
        --container-label "stepop-test.owner=$PODMAN_OWNER" "$@" >>"$T/vertex.log" 2>&1 &
    VERTEX_FAKE_PID=$!
    # SIGTERM: the fake removes its containers before it exits.
    on_exit "kill $VERTEX_FAKE_PID; wait $VERTEX_FAKE_PID"
    for i in $(seq 300); do [ -s "$pf" ] && break; kill -0 "$VERTEX_FAKE_PID" 2>/dev/null || break; sleep 0.05; done
    [ -s "$pf" ] || { echo "# the Vertex fake did not start:" >&2; sed 's/^/#   /' "$T/vertex.log" >&2; return 1; }
    VERTEX_FAKE_HOST=127.0.0.1:$(cat "$pf")
    VERTEX_FAKE_URL=http://$VERTEX_FAKE_HOST
    wait_http "$VERTEX_FAKE_URL/_/log"
}
vertex_script() { curl -s -X POST --data-binary "$1" "$VERTEX_FAKE_URL/_/script" >/dev/null; }
vertex_log() { curl -s "$VERTEX_FAKE_URL/_/log"; }
vertex_jobs() { curl -s "$VERTEX_FAKE_URL/_/jobs"; }

# azureml_mappers: the serializer mappers of npm @azure/arm-machinelearning as JSON (written once
# per package version by tests/servers/azureml_mappers.js, cached in build/); prints the path.
azureml_mappers() {
    local pkg=$ROOT/tests/servers/node_modules/@azure/arm-machinelearning/package.json ver out
    [ -f "$pkg" ] || { echo "# npm @azure/arm-machinelearning is missing (make deps)" >&2; return 1; }
    ver=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['version'])" "$pkg")
    out=$ROOT/build/azureml-mappers-$ver.json
    [ -s "$out" ] || node "$ROOT/tests/servers/azureml_mappers.js" "$out" >&2 || return 1
    echo "$out"
}

# start_azureml_fake [ARGS...]: tests/servers/azureml_fake.py at $AZUREML_FAKE_URL (ARM for Azure
# ML, bodies checked with the npm client's mappers, jobs run with Podman), accepting the ARM tokens
# of the Entra fake (start_azure_auth_fake, started here unless it runs); needs start_podman.
# Exports the identity chain's environment (the Entra fake's client secret, AZURE_AUTHORITY_HOST
# at it), AZUREML_FAKE_URL and AZUREML_SUB, AZUREML_RG, AZUREML_WS for settings.
start_azureml_fake() {
    local i m pf=$T/azureml.$RANDOM.port
    m=$(azureml_mappers) || return 1
    [ -n "${AZURE_AUTH_FAKE_URL:-}" ] || start_azure_auth_fake || { echo "# the Entra fake did not start" >&2; return 1; }
    AZUREML_SUB=00000000-0000-0000-0000-0000000000a1 AZUREML_RG=rg-stepop AZUREML_WS=ws-stepop
    python3 "$ROOT/tests/servers/azureml_fake.py" --port-file "$pf" --mappers "$m" --podman-dir "$PODMAN_DIR" \
        --jobs-dir "$T/azureml-jobs" --subscription "$AZUREML_SUB" --resource-group "$AZUREML_RG" \
        --workspace "$AZUREML_WS" --token-verify "$AZURE_AUTH_FAKE_URL" --tenant "$AZURE_FAKE_TENANT" \
        --client-id "$AZURE_FAKE_SECRET_CLIENT" --container-label "stepop-test.owner=$PODMAN_OWNER" "$@" \
        >>"$T/azureml.log" 2>&1 &
    AZUREML_FAKE_PID=$!
    # SIGTERM: the fake removes its containers before it exits.
    on_exit "kill $AZUREML_FAKE_PID; wait $AZUREML_FAKE_PID"
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    AZUREML_FAKE_URL=http://127.0.0.1:$(cat "$pf")
    wait_http "$AZUREML_FAKE_URL/_/log" || return 1
    unset AZURE_CLIENT_CERTIFICATE_PATH AZURE_CLIENT_CERTIFICATE_PASSWORD AZURE_FEDERATED_TOKEN_FILE \
        IDENTITY_ENDPOINT IDENTITY_HEADER
    export AZURE_TENANT_ID=$AZURE_FAKE_TENANT AZURE_CLIENT_ID=$AZURE_FAKE_SECRET_CLIENT \
        AZURE_CLIENT_SECRET=$AZURE_FAKE_SECRET AZURE_AUTHORITY_HOST=$AZURE_AUTH_FAKE_URL
    export AZUREML_SUB AZUREML_RG AZUREML_WS AZUREML_FAKE_URL
}
azureml_script() { curl -s -X POST --data-binary "$1" "$AZUREML_FAKE_URL/_/script" >/dev/null; }
azureml_log() { curl -s "$AZUREML_FAKE_URL/_/log"; }
azureml_jobs() { curl -s "$AZUREML_FAKE_URL/_/jobs"; }

# ---- Podman: a real container engine behind the Docker API (docs/testing.md#containers) ----
# Storage lives in build/podman/ and is shared by the tests of a run and by later runs, so the
# test images are built once per content; each test starts its own `podman system service` on a
# socket in its own directory and removes the containers it labelled. Podman here needs runc
# (crun fails on this kernel's cgroup hybrid mode) and explicit ulimits no higher than the
# podman process's own (it drops RLIMIT_NPROC to 32768 when it cannot raise it, and a container
# cannot get more without CAP_SYS_RESOURCE).
PODMAN_DIR=$ROOT/build/podman
podman_cli() { podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run" --tmpdir "$PODMAN_DIR/tmp" "$@"; }

start_podman() {
    command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 || skip_all "podman or runc is missing (make deps)"
    mkdir -p "$PODMAN_DIR/root" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp"
    local nofile nproc i
    nofile=$(ulimit -Hn)
    nproc=$(ulimit -Hu)
    [ "$nofile" = unlimited ] && nofile=1048576
    { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
    cat >"$PODMAN_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
events_logger = "file"
CONF
    export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
    # Podman's database records the storage paths: a checkout that moved starts afresh.
    if ! podman_cli info >"$T/podman-info.log" 2>&1 && grep -q "database configuration mismatch" "$T/podman-info.log"; then
        rm -rf "$PODMAN_DIR/root" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp"
        mkdir -p "$PODMAN_DIR/root" "$PODMAN_DIR/run" "$PODMAN_DIR/tmp"
    fi
    if ! podman_cli info >"$T/podman-info.log" 2>&1; then
        echo "# podman info failed:" >&2
        sed 's/^/#   /' "$T/podman-info.log" >&2
        return 1
    fi
    PODMAN_OWNER=$$-$RANDOM
    PODMAN_SOCK=$T/podman.sock
    # Not through podman_cli: $! must be podman itself, not a subshell around it. Started in $T:
    # conmon writes a file named "oom" into its working directory when a container is OOM-killed.
    cd "$T" || return 1
    podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run" --tmpdir "$PODMAN_DIR/tmp" \
        system service --time=0 "unix://$PODMAN_SOCK" >"$T/podman-service.log" 2>&1 &
    PODMAN_PID=$!
    cd "$OLDPWD" || return 1
    on_exit "kill $PODMAN_PID; wait $PODMAN_PID"
    # Registered after the kill, so it runs before it: the containers this test made go first.
    on_exit "podman_cli rm -f -t 0 \$(podman_cli ps -aq --filter label=stepop-test.owner=$PODMAN_OWNER)"
    for i in $(seq 200); do
        [ "$(curl -s --max-time 1 --unix-socket "$PODMAN_SOCK" http://d/_ping 2>/dev/null)" = OK ] && break
        sleep 0.05
    done
    [ "$(curl -s --max-time 2 --unix-socket "$PODMAN_SOCK" http://d/_ping 2>/dev/null)" = OK ] || {
        echo "# podman system service did not come up:" >&2
        sed 's/^/#   /' "$T/podman-service.log" >&2
        return 1
    }
    export DOCKER_HOST=unix://$PODMAN_SOCK
}

# podman_rootfs DIR BINARY...: a root file system with busybox (Debian's busybox-static), the
# glibc libraries and other shared libraries BINARY needs, /tmp and a passwd file.
podman_rootfs() {
    local d=$1 f a
    shift
    mkdir -p "$d/bin" "$d/tmp" "$d/etc" "$d/usr/local/bin" "$d/root"
    chmod 1777 "$d/tmp"
    cp /bin/busybox "$d/bin/busybox"
    for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/etc/group"
    for f in $(ldd "$@" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u); do
        mkdir -p "$d$(dirname "$f")"
        cp -L "$f" "$d$f"
    done
}

# podman_images: the test images, built when their content changed (tagged by its hash):
# $STEP_IMAGE holds stepop at /usr/local/bin/stepop (build/stepop-static, else build/stepop
# with its libraries) and a CMD that must never run; $BARE_IMAGE has no stepop (inject).
# $STEP_IMAGE_STATIC is 1 when the image's stepop is the static binary.
podman_images() {
    local bin=$ROOT/build/stepop-static recipe=3 hash libs
    STEP_IMAGE_STATIC=1
    [ -x "$bin" ] || { bin=$ROOT/build/stepop; STEP_IMAGE_STATIC=0; }
    libs=$(ldd "$bin" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
    # shellcheck disable=SC2086
    hash=$({ echo "$recipe"; cat "$bin" /bin/busybox $libs; } | sha256sum | cut -c1-16)
    STEP_IMAGE=localhost/stepop-test/step:$hash
    BARE_IMAGE=localhost/stepop-test/bare:$hash
    if ! podman_cli image exists "$STEP_IMAGE" || ! podman_cli image exists "$BARE_IMAGE"; then
        podman_cli images --format '{{.Repository}}:{{.Tag}}' | grep -E '^localhost/stepop-test/(step|bare):' |
            xargs -r podman_cli rmi -f >/dev/null 2>&1
        rm -rf "$T/rootfs-step" "$T/rootfs-bare"
        podman_rootfs "$T/rootfs-step" "$bin" || return 1
        cp "$bin" "$T/rootfs-step/usr/local/bin/stepop"
        podman_rootfs "$T/rootfs-bare" "$bin" || return 1
        tar -C "$T/rootfs-step" -c . | podman_cli import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
            --change 'CMD ["/bin/sh", "-c", "echo the image CMD ran; exit 99"]' - "$STEP_IMAGE" >"$T/import.log" 2>&1 || return 1
        tar -C "$T/rootfs-bare" -c . | podman_cli import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
            - "$BARE_IMAGE" >>"$T/import.log" 2>&1 || return 1
        rm -rf "$T/rootfs-step" "$T/rootfs-bare"
    fi
}

# kbed_bin: the Kubernetes test bed's binaries (tests/testbeds/kubernetes/README.md), newest cache
# entry first; empty when none. With STEPOP_TESTBED_BUILD=1 (CI) build.sh builds them first, or
# waits for the build already under way (its lock) and finds them.
kbed_bin() {
    local cache=${STEPOP_TESTBED_CACHE:-/var/cache/stepop-testbeds} d bin=""
    if [ "${STEPOP_TESTBED_BUILD:-0}" = 1 ]; then
        "$ROOT/tests/testbeds/kubernetes/build.sh" >"$T/kbed-build.log" 2>&1 || {
            echo "# tests/testbeds/kubernetes/build.sh failed:" >&2
            tail -20 "$T/kbed-build.log" | sed 's/^/#   /' >&2
            return 1
        }
    fi
    while IFS= read -r d; do
        [ -x "$d/kube-apiserver" ] && [ -f "$d/../VERSION" ] && bin=$d
    done < <(printf '%s\n' "$cache"/kubernetes-*/bin | sort -V)
    echo "$bin"
}

# kbed_busybox_image: $KBED_BUSYBOX, the test bed's busybox image, built once per busybox (tagged
# by its hash); the import's output is in $T/import.log when it fails.
kbed_busybox_image() {
    KBED_BUSYBOX=localhost/stepop-test/kbed-busybox:$(sha256sum /bin/busybox | cut -c1-16)
    podman_cli image exists "$KBED_BUSYBOX" && return 0
    rm -rf "$T/rootfs"
    podman_rootfs "$T/rootfs"
    tar -C "$T/rootfs" -c . | podman_cli import \
        --change 'CMD ["/bin/sh", "-c", "echo the image CMD ran; exit 99"]' - "$KBED_BUSYBOX" >"$T/import.log" 2>&1
}

# start_kbed GPUS: Podman, a busybox image ($KBED_BUSYBOX) and the Kubernetes test bed in $T/bed
# with a node of GPUS nvidia.com/gpu, stopped at exit; its env sourced (KUBECONFIG, KBED_*).
# Skips the test when the binaries are not built (and STEPOP_TESTBED_BUILD is not 1).
start_kbed() {
    local bin start
    bin=$(kbed_bin) || { not_ok "the Kubernetes test bed builds"; done_testing; }
    [ -n "$bin" ] || skip_all "no Kubernetes binaries in ${STEPOP_TESTBED_CACHE:-/var/cache/stepop-testbeds} (tests/testbeds/kubernetes/build.sh builds them, ~11 min)"
    command -v openssl >/dev/null || skip_all "openssl is missing"
    start_podman || { not_ok "podman starts"; done_testing; }
    if ! kbed_busybox_image; then
        not_ok "busybox image builds"
        diag <"$T/import.log"
        done_testing
    fi
    start=$SECONDS
    on_exit "'$ROOT/tests/testbeds/kubernetes/stop.sh' '$T/bed'"
    if ! KBED_BIN=$bin KBED_NODE_GPUS=$1 KBED_CONTAINER_LABEL="stepop-test.owner=$PODMAN_OWNER" \
        "$ROOT/tests/testbeds/kubernetes/start.sh" "$T/bed" >"$T/start.out" 2>"$T/start.err"; then
        not_ok "the bed starts"
        diag <"$T/start.err"
        done_testing
    fi
    ok "the bed starts ($((SECONDS - start)) s, $(head -1 "$bin/../VERSION"))"
    # shellcheck disable=SC1091
    . "$T/bed/env"
}

# ---- Azure Blob (az://): Azurite ---------------------------------------------------------------
# start_azurite [ARGS...]: Azurite's blob service in strict mode (every Shared Key signature and
# SAS checked exactly) on a free port, its data under $T, stopped at exit. Extra ARGS go to
# azurite-blob (--oauth basic --cert --key). Sets AZURITE_PORT, AZURITE_URL (the blob endpoint of
# the well-known account devstoreaccount1) and AZURITE_CS (its connection string), and exports the
# environment of a user with that connection string and nothing else.
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==
azurite_available() {
    command -v node >/dev/null && [ -f "$ROOT/tests/servers/node_modules/azurite/package.json" ] &&
        [ -f "$ROOT/tests/servers/node_modules/@azure/storage-blob/package.json" ]
}
start_azurite() {
    local scheme=http i
    case " $* " in *" --cert "*) scheme=https ;; esac
    AZURITE_PORT=$(free_port)
    mkdir -p "$T/azurite"
    # Azurite 3.37 declares Node >= 22 but runs on 20; its engine warning goes to the log.
    node "$ROOT/tests/servers/node_modules/azurite/dist/src/blob/main.js" --blobHost 127.0.0.1 \
        --blobPort "$AZURITE_PORT" --location "$T/azurite" --silent --disableTelemetry "$@" \
        >"$T/azurite.log" 2>&1 &
    on_exit "kill $!"
    AZURITE_URL=$scheme://127.0.0.1:$AZURITE_PORT/$AZURITE_ACCOUNT
    for i in $(seq 300); do
        grep -q "successfully listens" "$T/azurite.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "successfully listens" "$T/azurite.log" || { echo "# Azurite did not start" >&2; diag <"$T/azurite.log" >&2; return 1; }
    AZURITE_CS="DefaultEndpointsProtocol=$scheme;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$AZURITE_URL;"
    azure_env_clear
    export AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS
}
# No Azure credentials or settings at all.
azure_env_clear() {
    unset AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT AZURE_STORAGE_KEY AZURE_STORAGE_SAS_TOKEN \
        AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH AZURE_FEDERATED_TOKEN_FILE \
        AZURE_AUTHORITY_HOST IDENTITY_ENDPOINT IDENTITY_HEADER STEPOP_AZURE_BLOB_ENDPOINT STEPOP_AZURE_PUT_THRESHOLD STEPOP_AZURE_BLOCK_SIZE \
        STEPOP_AZURE_CONCURRENCY STEPOP_AZURE_MEMORY STEPOP_AZURE_LIST_PAGE STEPOP_NOW
    # The identity chain's last resorts stay on this machine: IMDS on a closed loopback port.
    export AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:9
}
# azblob CMD ARGS...: tests/servers/azure_blob_client.js (@azure/storage-blob) against Azurite.
azblob() { node "$ROOT/tests/servers/azure_blob_client.js" "$@"; }
# start_azure_proxy [--upstream-tls]: tests/servers/azure_busy_proxy.py (plain http) in front of
# Azurite (logs requests, injects ServerBusy); sets AZPROXY (its control URL) and AZPROXY_CS (the
# connection string through it). --upstream-tls when Azurite serves https.
start_azure_proxy() {
    local i pf=$T/azproxy.port
    python3 "$ROOT/tests/servers/azure_busy_proxy.py" --upstream "$AZURITE_PORT" --port-file "$pf" "$@" \
        >"$T/azproxy.log" 2>&1 &
    on_exit "kill $!"
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    AZPROXY=http://127.0.0.1:$(cat "$pf")
    wait_http "$AZPROXY/_/log" || return 1
    AZPROXY_CS="DefaultEndpointsProtocol=http;AccountName=$AZURITE_ACCOUNT;AccountKey=$AZURITE_KEY;BlobEndpoint=$AZPROXY/$AZURITE_ACCOUNT;"
}
azproxy_reset() { curl -s -X POST "$AZPROXY/_/reset" >/dev/null; }
azproxy_busy() { curl -s -X POST "$AZPROXY/_/busy?n=$1&code=${2:-ServerBusy}&status=${3:-503}" >/dev/null; }
# azproxy_count PYTHON-EXPR: requests in the proxy's log for which EXPR (over e) holds
azproxy_count() { curl -s "$AZPROXY/_/log" | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }

# ---- Google credentials (tests/servers/google_auth_fake.py; docs/testing.md) ----
# start_google_auth_fake [ARGS...]: the fake's token endpoint, STS, IAM generateAccessToken and
# metadata server at $GOOGLE_AUTH_FAKE_URL (exported). The environment is set so that nothing
# leaves loopback or reads this machine's own credentials: GCE_METADATA_HOST names the fake,
# CLOUDSDK_CONFIG an empty directory under $T, GOOGLE_APPLICATION_CREDENTIALS and the project
# variables are unset. ARGS go to the fake (--project, --email, --tokens FILE).
start_google_auth_fake() {
    local i pf=$T/google_auth.$RANDOM.port
    /usr/bin/python3 -c 'import google.auth.jwt' 2>/dev/null || { echo "# python3-google-auth is missing (make deps)" >&2; return 1; }
    /usr/bin/python3 "$ROOT/tests/servers/google_auth_fake.py" --port-file "$pf" "$@" >>"$T/google_auth.log" 2>&1 &
    on_exit "kill $!"
    for i in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
    export GOOGLE_AUTH_FAKE_URL=http://127.0.0.1:$(cat "$pf")
    export GCE_METADATA_HOST=127.0.0.1:$(cat "$pf") CLOUDSDK_CONFIG=$T/gcloud
    unset GOOGLE_APPLICATION_CREDENTIALS GOOGLE_CLOUD_PROJECT GCLOUD_PROJECT GCE_METADATA_ROOT
    mkdir -p "$CLOUDSDK_CONFIG"
    wait_http "$GOOGLE_AUTH_FAKE_URL/_/log"
}
# google_sa_key FILE EMAIL [PROJECT]: a fresh RSA key (openssl) in a service_account key file
# whose token_uri is the fake's, its public key registered with the fake.
google_sa_key() {
    local kid
    kid=$(openssl rand -hex 20)
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1.pem" 2>/dev/null || return 1
    openssl pkey -in "$1.pem" -pubout -out "$1.pub" 2>/dev/null || return 1
    /usr/bin/python3 - "$1" "$2" "${3:-fake-project}" "$kid" "$GOOGLE_AUTH_FAKE_URL" <<'PY' || return 1
import json, sys
f, email, project, kid, url = sys.argv[1:]
json.dump({'type': 'service_account', 'project_id': project, 'private_key_id': kid,
           'private_key': open(f + '.pem').read(), 'client_email': email, 'client_id': '1234567890',
           'auth_uri': 'https://accounts.google.com/o/oauth2/auth', 'token_uri': url + '/token'}, open(f, 'w'))
PY
    google_auth_setup service-account "{\"email\": \"$2\", \"key_id\": \"$kid\", \"public_pem\": $(/usr/bin/python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()))' "$1.pub")}"
}
# google_auth_setup WHAT JSON: POST /_/WHAT (service-account, user, subject, config) to the fake.
google_auth_setup() { curl -sf -X POST --data-binary "$2" "$GOOGLE_AUTH_FAKE_URL/_/$1" >/dev/null; }
google_auth_log() { curl -s "$GOOGLE_AUTH_FAKE_URL/_/log"; }
# google_auth_count PYEXPR: how many logged requests e satisfy PYEXPR (e.g. "e.get('kind') == 'sts'").
google_auth_count() { curl -s "$GOOGLE_AUTH_FAKE_URL/_/log" | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }

# ---- Azure identity: tests/servers/azure_auth_fake.py (docs/artifacts.md#identity) ----------
# start_azure_auth_fake [ARGS...]: the Entra token service fake over http at $AZURE_AUTH_FAKE_URL
# and https at $AZURE_AUTH_FAKE_TLS_URL (self-signed for 127.0.0.1: $AZURE_AUTH_FAKE_CA), with
# material under $T/azure/ and these registrations (exported):
#   AZURE_FAKE_TENANT                          the tenant
#   AZURE_FAKE_SECRET_CLIENT, AZURE_FAKE_SECRET a client with a secret
#   AZURE_FAKE_CERT_CLIENT                     a client with the certificate in $T/azure/client.pem
#                                              (PEM, certificate and key), also as client.pfx with
#                                              password $AZURE_FAKE_PFX_PASSWORD
#   AZURE_FAKE_FED_CLIENT                      a client trusting the test identity provider
#                                              (issuer $AZURE_FAKE_FED_ISSUER, subject
#                                              $AZURE_FAKE_FED_SUBJECT; azure_federated_token signs)
#   AZURE_FAKE_MSI_SYSTEM, AZURE_FAKE_MSI_USER  the managed identities (IMDS and App Service)
#   AZURE_FAKE_APP_HEADER                      App Service's IDENTITY_HEADER
# Nothing AZURE_* that the chain reads is exported: each test sets the environment it tests.
# ARGS go to the fake (--lifetime SECONDS). Uses Debian's python3-jwt and python3-cryptography.
azure_fake_python() {
    local py
    for py in /usr/bin/python3 python3; do
        "$py" -c 'import jwt, cryptography' 2>/dev/null && { echo "$py"; return 0; }
    done
    return 1
}

start_azure_auth_fake() {
    local py d=$T/azure pf tpf i
    py=$(azure_fake_python) || { echo "# python3-jwt or python3-cryptography is missing (make deps)" >&2; return 1; }
    command -v openssl >/dev/null || { echo "# openssl is missing" >&2; return 1; }
    mkdir -p "$d"
    export AZURE_FAKE_TENANT=7a3c0d2e-5b1f-4c8e-9d6a-0f1e2d3c4b5a
    export AZURE_FAKE_SECRET_CLIENT=0a1b2c3d-1111-4111-8111-000000000001
    export AZURE_FAKE_CERT_CLIENT=0a1b2c3d-2222-4222-8222-000000000002
    export AZURE_FAKE_FED_CLIENT=0a1b2c3d-3333-4333-8333-000000000003
    export AZURE_FAKE_MSI_SYSTEM=0a1b2c3d-4444-4444-8444-000000000004
    export AZURE_FAKE_MSI_USER=0a1b2c3d-5555-4555-8555-000000000005
    export AZURE_FAKE_SECRET="s3cr3t~$RANDOM$RANDOM.fake" AZURE_FAKE_PFX_PASSWORD="pfx-$RANDOM"
    export AZURE_FAKE_APP_HEADER="hdr-$RANDOM$RANDOM"
    export AZURE_FAKE_FED_ISSUER=https://oidc.test.invalid/cluster AZURE_FAKE_FED_SUBJECT=system:serviceaccount:ml:trainer
    {
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/tls.key" -out "$d/tls.crt" -days 2 \
            -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost &&
            openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/client.key" -out "$d/client.crt" -days 2 \
                -subj /CN=stepop-test-client &&
            cat "$d/client.crt" "$d/client.key" >"$d/client.pem" &&
            openssl pkcs12 -export -in "$d/client.crt" -inkey "$d/client.key" -out "$d/client.pfx" \
                -passout "pass:$AZURE_FAKE_PFX_PASSWORD" &&
            openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/idp.key" &&
            openssl pkey -in "$d/idp.key" -pubout -out "$d/idp.pub"
    } >"$d/openssl.log" 2>&1 || { diag <"$d/openssl.log"; return 1; }
    export AZURE_AUTH_FAKE_CA=$d/tls.crt
    pf=$d/port.$RANDOM tpf=$d/tls-port.$RANDOM
    "$py" "$ROOT/tests/servers/azure_auth_fake.py" --port-file "$pf" --tls-port-file "$tpf" \
        --tls-cert "$d/tls.crt" --tls-key "$d/tls.key" --tenant "$AZURE_FAKE_TENANT" \
        --secret "$AZURE_FAKE_SECRET_CLIENT=$AZURE_FAKE_SECRET" --cert "$AZURE_FAKE_CERT_CLIENT=$d/client.crt" \
        --federated "$AZURE_FAKE_FED_CLIENT=$AZURE_FAKE_FED_ISSUER|$AZURE_FAKE_FED_SUBJECT|$d/idp.pub" \
        --msi-system "$AZURE_FAKE_MSI_SYSTEM" --msi-user "$AZURE_FAKE_MSI_USER" \
        --app-service-header "$AZURE_FAKE_APP_HEADER" "$@" >>"$T/azure_auth_fake.log" 2>&1 &
    AZURE_AUTH_FAKE_PID=$!
    on_exit "kill $AZURE_AUTH_FAKE_PID; wait $AZURE_AUTH_FAKE_PID"
    for i in $(seq 600); do [ -s "$pf" ] && [ -s "$tpf" ] && break; sleep 0.05; done
    AZURE_AUTH_FAKE_URL=http://127.0.0.1:$(cat "$pf") AZURE_AUTH_FAKE_TLS_URL=https://127.0.0.1:$(cat "$tpf")
    export AZURE_AUTH_FAKE_URL AZURE_AUTH_FAKE_TLS_URL
    wait_http "$AZURE_AUTH_FAKE_URL/_/log"
}
# azure_federated_token FILE [AUD] [SUBJECT] [LIFETIME]: a token of the test identity provider
# (what Kubernetes projects for workload identity) written to FILE.
azure_federated_token() {
    "$(azure_fake_python)" - "$1" "${2:-api://AzureADTokenExchange}" "${3:-$AZURE_FAKE_FED_SUBJECT}" \
        "${4:-3600}" "$T/azure/idp.key" "$AZURE_FAKE_FED_ISSUER" <<'PY'
import sys, time, uuid, jwt
path, aud, sub, life, key, iss = sys.argv[1:7]
now = int(time.time())
tok = jwt.encode({"aud": aud, "iss": iss, "sub": sub, "iat": now, "nbf": now, "exp": now + int(life),
                  "jti": str(uuid.uuid4())}, open(key).read(), algorithm="RS256", headers={"kid": "idp"})
open(path, "w").write(tok + "\n")
PY
}
azure_auth_log() { curl -s "$AZURE_AUTH_FAKE_URL/_/log"; }
# azure_auth_count PYTHON-EXPR: log entries e for which the expression holds
azure_auth_count() { azure_auth_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }
# ---- end of Azure identity ------------------------------------------------------------------

# ---- Modal: tests/servers/modal_fake.js (docs/testing.md#the-modal-fake) --------------------
# start_modal_fake [ARGS...]: the Modal API fake (gRPC with the npm modal SDK's own codecs,
# sandboxes run with Podman) on loopback, stopped at exit (its containers removed); needs
# start_podman. Exports MODAL_SERVER_URL (cleartext http://, as the SDKs take it), MODAL_TOKEN_ID,
# MODAL_TOKEN_SECRET and MODAL_FAKE_CTL (its control endpoints), unsets the other MODAL_*
# variables a client reads and points HOME's ~/.modal.toml nowhere unless the test set HOME.
# ARGS go to the fake (--container-env K=V, --stop-grace S, --start-delay S, --token-lifetime S,
# --environment NAME).
modal_fake_available() {
    command -v node >/dev/null && [ -f "$ROOT/tests/servers/node_modules/modal/dist/index.cjs" ] &&
        [ -f "$ROOT/tests/servers/node_modules/@grpc/grpc-js/package.json" ]
}
start_modal_fake() {
    local i pf=$T/modal_fake.$RANDOM.port
    modal_fake_available || { echo "# npm modal or @grpc/grpc-js is missing (make deps)" >&2; return 1; }
    unset MODAL_ENVIRONMENT MODAL_PROFILE MODAL_CONFIG_PATH MODAL_IMAGE_BUILDER_VERSION MODAL_SANDBOX_V2 \
        MODAL_OAUTH_REFRESH_TOKEN MODAL_OAUTH_CLIENT_ID MODAL_OAUTH_CLIENT_SECRET MODAL_OAUTH_JWT_KEY MODAL_LOGLEVEL
    export MODAL_TOKEN_ID=ak-stepoptest$RANDOM MODAL_TOKEN_SECRET=as-modal-secret-$RANDOM$RANDOM
    node "$ROOT/tests/servers/modal_fake.js" --port-file "$pf" --podman-dir "$PODMAN_DIR" --jobs-dir "$T/modal-jobs" \
        --token-id "$MODAL_TOKEN_ID" --token-secret "$MODAL_TOKEN_SECRET" \
        --container-label "stepop-test.owner=$PODMAN_OWNER" "$@" >>"$T/modal_fake.log" 2>&1 &
    MODAL_FAKE_PID=$!
    # SIGTERM: the fake removes its containers before it exits.
    on_exit "kill $MODAL_FAKE_PID; wait $MODAL_FAKE_PID"
    for i in $(seq 300); do [ -s "$pf" ] && break; sleep 0.05; done
    [ -s "$pf" ] || { echo "# the Modal fake did not start" >&2; diag <"$T/modal_fake.log" >&2; return 1; }
    read -r MODAL_FAKE_GRPC_PORT MODAL_FAKE_CTL_PORT <"$pf"
    export MODAL_SERVER_URL=http://127.0.0.1:$MODAL_FAKE_GRPC_PORT MODAL_FAKE_CTL=http://127.0.0.1:$MODAL_FAKE_CTL_PORT
    wait_http "$MODAL_FAKE_CTL/_/log"
}
modal_script() { curl -s -X POST --data-binary "$1" "$MODAL_FAKE_CTL/_/script" >/dev/null; }
modal_log() { curl -s "$MODAL_FAKE_CTL/_/log"; }
modal_sandboxes() { curl -s "$MODAL_FAKE_CTL/_/sandboxes"; }
# modal_count PYTHON-EXPR: calls in the fake's log for which EXPR (over e) holds
modal_count() { modal_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }
# modal_client CMD ARGS...: tests/servers/modal_client.js (the npm modal SDK) against the fake.
modal_client() { node "$ROOT/tests/servers/modal_client.js" "$@"; }
# ---- end of Modal ---------------------------------------------------------------------------

# --- Slurm test bed (issue 20; tests/testbeds/slurm) ---
# start_slurm: a one-node Slurm under $T/slurm, SLURM_CONF exported, stopped when the test exits.
# Skips the test without slurm-wlm/munge or root; a bed that does not come up is a failure.
start_slurm() {
    local b
    for b in munged mungekey slurmctld slurmd sbatch scontrol scancel; do
        command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || skip_all "$b not installed (Debian slurm-wlm, munge)"
    done
    [ "$(id -u)" = 0 ] || skip_all "the Slurm bed runs slurmd as root"
    on_exit "$ROOT/tests/testbeds/slurm/stop.sh $T/slurm"
    if ! "$ROOT/tests/testbeds/slurm/start.sh" "$T/slurm" >/dev/null 2>"$T/slurm-bed.err"; then
        not_ok "the Slurm bed starts"
        diag <"$T/slurm-bed.err"
        done_testing
    fi
    export SLURM_CONF=$T/slurm/slurm.conf
}
# --- end Slurm test bed ---

# ---- sshd: a real OpenSSH server for the ssh plugin (docs/testing.md#sshd) -------------------
# start_sshd: /usr/sbin/sshd -D on 127.0.0.1:SSHD_PORT with host and client keys made for this
# test under $T/sshd, public-key login only, logging to $T/sshd/sshd.log; stopped at exit.
# Exports SSHD_PORT, SSHD_KEY (the client's private key), SSHD_USER and SSH_CONFIG, a client
# config (StrictHostKeyChecking yes against a known_hosts written for the test, BatchMode) for
# `ssh -F "$SSH_CONFIG" stepop-test`. sshd_available says whether the binaries are there.
sshd_available() { [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; }
start_sshd() {
    local d=$T/sshd i
    sshd_available || { echo "# /usr/sbin/sshd, ssh or ssh-keygen is missing (openssh-server, openssh-client)" >&2; return 1; }
    mkdir -p "$d" && chmod 700 "$d"
    ssh-keygen -q -t ed25519 -N '' -C stepop-test-host -f "$d/host_ed25519" || return 1
    ssh-keygen -q -t ed25519 -N '' -C stepop-test-client -f "$d/client" || return 1
    cp "$d/client.pub" "$d/authorized_keys"
    chmod 600 "$d/authorized_keys"
    SSHD_PORT=$(free_port)
    SSHD_USER=$(id -un)
    # sshd insists on its privilege-separation directory even when run by hand.
    [ -d /run/sshd ] || mkdir -p /run/sshd 2>/dev/null || true
    cat >"$d/sshd_config" <<CFG
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers $SSHD_USER
LogLevel VERBOSE
MaxStartups 50:30:100
MaxSessions 50
Subsystem sftp internal-sftp
CFG
    /usr/sbin/sshd -t -f "$d/sshd_config" || { echo "# sshd rejects its test config" >&2; return 1; }
    /usr/sbin/sshd -D -e -f "$d/sshd_config" >>"$d/sshd.log" 2>&1 &
    SSHD_PID=$!
    on_exit "kill $SSHD_PID; wait $SSHD_PID"
    printf '[127.0.0.1]:%s %s\n' "$SSHD_PORT" "$(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
    SSHD_KEY=$d/client
    SSH_CONFIG=$d/ssh_config
    cat >"$SSH_CONFIG" <<CFG
Host stepop-test
    HostName 127.0.0.1
    Port $SSHD_PORT
    User $SSHD_USER
    IdentityFile $SSHD_KEY
    IdentitiesOnly yes
    UserKnownHostsFile $d/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 10
CFG
    export SSHD_PORT SSHD_KEY SSHD_USER SSH_CONFIG SSHD_PID
    for i in $(seq 100); do
        ssh -F "$SSH_CONFIG" stepop-test true 2>/dev/null && return 0
        kill -0 "$SSHD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "# sshd did not come up on 127.0.0.1:$SSHD_PORT" >&2
    diag <"$d/sshd.log" >&2
    return 1
}
# ---- end of sshd ----------------------------------------------------------------------------
