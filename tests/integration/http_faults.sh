#!/usr/bin/env bash
# Retries, resume and refusals of the HTTP layer against a server that fails on purpose
# (tests/servers/faulty.js): 5xx, Retry-After, resets mid-body, stalls, ignored or wrong ranges,
# objects changing under a download; streamed and rewindable uploads; the proxy variables.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
# The single stream (STEPOP_HTTP_CONCURRENCY=1); the parallel ranged GETs and their faults are
# http_ranged.sh's.
export STEPOP_HTTP_CONCURRENCY=1
start_faulty || { not_ok "faulty server starts"; done_testing; }
head -c 5000000 /dev/urandom >"$FAULTY_ROOT/obj.bin"
sum=$(sha256sum "$FAULTY_ROOT/obj.bin" | cut -d' ' -f1)
count() { faulty_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }

get_ok() { # RULES DESC
    faulty_reset
    rm -f "$T/got"
    expect_rc 0 "$2" "$STEPOP" artifact get "$FAULTY_URL/_f/$1/obj.bin" "$T/got" --sha256 "$sum"
}

get_ok s500x2 "two 500s, then success"
check "three GETs were made" test "$(count "e['method']=='GET'")" = 3
get_ok s503x1,s502x1,s504x1 "503, 502 and 504 are retried"
get_ok s429x1,s408x1 "429 and 408 are retried"
start=$(date +%s%N)
get_ok s503ra1x1 "503 with Retry-After: 1"
check "Retry-After was honoured (waited at least 1 s)" test $(( ($(date +%s%N) - start) / 1000000 )) -ge 1000
get_ok reset100000x2 "connection reset mid-body twice: download resumes"
check "resumed requests ask for the rest with If-Match" test "$(count "e['range']=='bytes=100000-' and e['ifMatch']")" = 1
check "and each resume continues from the last byte" test "$(count "e['range']=='bytes=200000-' and e['ifMatch']")" = 1
STEPOP_HTTP_STALL_TIMEOUT=2s get_ok stall300000x1 "a stalled body is abandoned and resumed"
check "the resume starts where the stall began" test "$(count "e['range']=='bytes=300000-'")" = 1
get_ok reset100000x1,norangex2 "a server that ignores Range on resume: the repeated bytes are skipped"

faulty_reset
expect_rc 4 "a resume answered with the wrong Content-Range is refused" \
    "$STEPOP" artifact get "$FAULTY_URL/_f/reset100000x1,badrangex2/obj.bin" "$T/bad"
err_has "Content-Range" "and the message says why"
check "no file is left" test ! -e "$T/bad"
# A server lying about the object's size: every answer must announce the same size, and exactly
# that many bytes must arrive. (The first GET, a 200, also counts against each rule.)
faulty_reset
expect_rc 4 "a resume announcing a size of 2^63-1 is refused" \
    "$STEPOP" artifact get "$FAULTY_URL/_f/reset100000x1,total9223372036854775807x2/obj.bin" "$T/bad"
err_has "size changed from 5000000 to 9223372036854775807" "and the message gives both sizes"
check "no file is left" test ! -e "$T/bad"
check "no part file is left" sh -c "! ls -a '$T' | grep -q stepop-part"
mkdir -p "$T/tree"
cp "$FAULTY_ROOT/obj.bin" "$T/tree/"
tar -cf "$FAULTY_ROOT/tree.tar" -C "$T/tree" .
tsize=$(stat -c %s "$FAULTY_ROOT/tree.tar")
faulty_reset
expect_rc 4 "a resume announcing another size is refused, with --unpack too" \
    "$STEPOP" artifact get "$FAULTY_URL/_f/reset100000x1,total$((tsize + 1))x2/tree.tar" "$T/bad-dir" --unpack
err_has "size changed from $tsize to $((tsize + 1))" "and the message gives both sizes"
check "the destination it would have created does not exist" test ! -e "$T/bad-dir"
faulty_reset
expect_rc 4 "an object that changes during a download is refused (412 on If-Match)" \
    "$STEPOP" artifact get "$FAULTY_URL/_f/etagx1,reset100000x1/obj.bin" "$T/bad"
err_has "HTTP 412" "and the message gives the status"

faulty_reset
expect_rc 1 "retries are bounded" env STEPOP_HTTP_ATTEMPTS=3 "$STEPOP" artifact get "$FAULTY_URL/_f/s500x10/obj.bin" "$T/bad"
err_has "HTTP 500" "the message gives the last status"
check "exactly three attempts" test "$(count "e['method']=='GET'")" = 3
faulty_reset
expect_rc 3 "404 is final" "$STEPOP" artifact get "$FAULTY_URL/missing.bin" "$T/bad"
check "404 is not retried" test "$(count "e['method']=='GET'")" = 1
faulty_reset
expect_rc 1 "501 is not retried" "$STEPOP" artifact get "$FAULTY_URL/_f/s501x5/obj.bin" "$T/bad"
check "one request for a 501" test "$(count "e['method']=='GET'")" = 1

# Uploads.
faulty_reset
expect_rc 0 "a file upload is retried after 500s (the file is re-read)" \
    "$STEPOP" artifact put "$FAULTY_ROOT/obj.bin" "$FAULTY_URL/_f/s500x2/up/file.bin" --json
check "the server holds the whole file" cmp "$FAULTY_ROOT/obj.bin" "$FAULTY_ROOT/up/file.bin"
check "three PUTs" test "$(count "e['method']=='PUT'")" = 3
check "no PUT asked for 100-continue" test "$(count "e['method']=='PUT' and e['expect']")" = 0
faulty_reset
expect_rc 0 "a file upload reset midway is sent again" "$STEPOP" artifact put "$FAULTY_ROOT/obj.bin" "$FAULTY_URL/_f/reset1000000x1/up/file2.bin"
check "the server holds the whole file" cmp "$FAULTY_ROOT/obj.bin" "$FAULTY_ROOT/up/file2.bin"

make_tree "$T/src" 4
faulty_reset
expect_rc 0 "a streamed tar.zst upload reset midway is packed and sent again" \
    "$STEPOP" artifact put "$T/src" "$FAULTY_URL/_f/reset500000x1/up/tree.tar.zst" --json
rsha=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' "$T/out")
check "the reported sha256 is the stored object's" test "$rsha" = "$(sha256sum "$FAULTY_ROOT/up/tree.tar.zst" | cut -d' ' -f1)"
check "the stream was sent chunked (size unknown, nothing buffered whole)" test "$(count "e['method']=='PUT' and e['chunked']")" = 2
faulty_reset
expect_rc 0 "download + unpack resumes through the pipeline" \
    "$STEPOP" artifact get "$FAULTY_URL/_f/reset300000x1/up/tree.tar.zst" "$T/tree-back" --unpack --sha256 "$rsha"
check "the tree arrives intact" same_tree "$T/src" "$T/tree-back"
faulty_reset
expect_rc 1 "an upload failing every time gives up" env STEPOP_HTTP_ATTEMPTS=2 \
    "$STEPOP" artifact put "$T/src" "$FAULTY_URL/_f/s503x9/up/never.tar.gz"
check "and leaves no object" test ! -e "$FAULTY_ROOT/up/never.tar.gz"

# Standard proxy variables (libcurl's): http_proxy routes the request through the proxy.
faulty_reset
expect_rc 0 "http_proxy is honoured" env http_proxy="$FAULTY_URL" "$STEPOP" artifact get \
    "http://objects.example.invalid/obj.bin" "$T/via-proxy" --sha256 "$sum"
check "the request went through the proxy" test "$(count "e['proxied']")" = 1
faulty_reset
expect_rc 1 "no_proxy bypasses it" env http_proxy="$FAULTY_URL" no_proxy=objects.example.invalid STEPOP_HTTP_ATTEMPTS=1 \
    "$STEPOP" artifact get "http://objects.example.invalid/obj.bin" "$T/no-proxy"
check "nothing reached the proxy" test "$(count "True")" = 0

# STEPOP_HTTP_BEARER_TOKEN goes only to the store it is for: STEPOP_HTTP_BEARER_HOST, else the
# store the command works for; never to another host, nor across a redirect.
fport=${FAULTY_URL##*:}
faulty_reset
expect_rc 0 "a bearer token is sent to STEPOP_HTTP_BEARER_HOST" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=127.0.0.1:$fport "$STEPOP" artifact stat "$FAULTY_URL/obj.bin"
check "the server saw an Authorization header" test "$(count "e['auth']=='present'")" = 1
faulty_reset
expect_rc 0 "a host without a port covers every port" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=127.0.0.1 "$STEPOP" artifact stat "$FAULTY_URL/obj.bin"
check "the server saw an Authorization header" test "$(count "e['auth']=='present'")" = 1
faulty_reset
expect_rc 0 "a bearer token for another host" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=store.example.com "$STEPOP" artifact get "$FAULTY_URL/obj.bin" "$T/other-host" --sha256 "$sum"
check "is not sent to this one" test "$(count "e['auth']=='present'")" = 0
faulty_reset
expect_rc 0 "stepop artifact: the token goes to the store its URI names" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    "$STEPOP" artifact stat "$FAULTY_URL/obj.bin"
check "so this server saw it" test "$(count "e['auth']=='present'")" = 1
check "without printing the token" sh -c "! grep -q tok-secret '$T/err'"
expect_rc 2 "a malformed STEPOP_HTTP_BEARER_HOST is a usage error" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=http://x/y "$STEPOP" artifact stat "$FAULTY_URL/obj.bin"
faulty_reset
expect_rc 0 "a presigned URL on the token's host" env STEPOP_HTTP_BEARER_TOKEN=tok-secret STEPOP_HTTP_BEARER_HOST=127.0.0.1 \
    "$STEPOP" artifact get "$FAULTY_URL/obj.bin?X-Amz-Signature=abc" "$T/presigned" --sha256 "$sum"
check "gets no bearer token beside its own signature" test "$(count "e['auth']=='present'")" = 0

python3 "$ROOT/tests/servers/redirector.py" "$T/redir.port" "$FAULTY_URL" "$T/redir.log" &
on_exit "kill $!"
for i in $(seq 100); do [ -s "$T/redir.port" ] && break; sleep 0.05; done
rport=$(cat "$T/redir.port")
faulty_reset
expect_rc 0 "the token's host redirects to another port" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=127.0.0.1:$rport "$STEPOP" artifact get "http://127.0.0.1:$rport/obj.bin" "$T/redirected" --sha256 "$sum"
is_eq "the store's host got the token" "$(sort -u "$T/redir.log")" auth
check "the redirect's target did not" test "$(count "e['auth']=='present'")" = 0

# The reported case: a run on a file:// store reading an input from a third-party HTTP server.
export XDG_DATA_HOME=$T/data HOME=$T/home XDG_CONFIG_HOME=$T/config
mkdir -p "$HOME"
faulty_reset
expect_rc 0 "a run on a file store with an http input" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    "$STEPOP" submit --input "d=$FAULTY_URL/obj.bin" -- true
check "the input's server got no token" test "$(count "e['auth']=='present'")" = 0
check "its GET was made" test "$(count "e['method']=='GET'")" -ge 1
: >"$T/redir.log"
faulty_reset
expect_rc 0 "a run on an http store with an input from another server" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    "$STEPOP" submit --store "$FAULTY_URL/store/" --input "d=http://127.0.0.1:$rport/obj.bin" -- true
check "the store got the token (submitter and entrypoint)" test "$(count "e['auth']=='present' and e['method']=='PUT'")" -ge 3
is_eq "the input's server did not" "$(sort -u "$T/redir.log")" none
check "nor the server it redirected to" test "$(count "e['auth']=='present' and e['method']=='GET' and e['url']=='/obj.bin'")" = 0
done_testing
