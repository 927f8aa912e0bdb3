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
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
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
