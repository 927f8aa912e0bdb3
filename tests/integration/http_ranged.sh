#!/usr/bin/env bash
# Parallel ranged GETs of the http(s):// store (artifacts/ranged_get.c): against nginx (the parts
# counted in its access log) and against tests/servers/faulty.js, whose faults hit the parts and
# not the first GET (<rule>a1x<n>): a size that changes, a short part, a wrong Content-Range, a
# new ETag, a reset; a server that ignores Range; the bearer token on every part and nowhere else.
. "$(dirname "$0")/../lib.sh"
command -v nginx >/dev/null || skip_all "nginx is not installed"
command -v node >/dev/null || skip_all "node is not installed"

# ---- nginx ----------------------------------------------------------------------------------
start_nginx || { not_ok "nginx starts"; done_testing; }
size=$((20 * 1048576 + 12345))
head -c $size /dev/urandom >"$NGINX_ROOT/big.bin"
bsum=$(sha256sum "$NGINX_ROOT/big.bin" | cut -d' ' -f1)
log=$T/nginx/logs/access.log
# nginx logs a request after its answer is sent, so the client can be done first: wait until
# the log holds a request and has not grown for 300 ms (5 s at most).
settle() {
    local prev=-1 cur same=0 i
    for i in $(seq 1 50); do
        cur=$(grep -c '"GET /big.bin ' "$log")
        if [ "$cur" -gt 0 ] && [ "$cur" = "$prev" ]; then
            same=$((same + 1))
            [ "$same" -ge 3 ] && return 0
        else
            same=0
        fi
        prev=$cur
        sleep 0.1
    done
}
n206() { settle; grep -c '"GET /big.bin HTTP/1.1" 206 ' "$log"; }
n200() { settle; grep -c '"GET /big.bin HTTP/1.1" 200 ' "$log"; }

: >"$log"
expect_rc 0 "a 20 MiB object in 1 MiB parts, 4 at a time" env STEPOP_HTTP_PART_SIZE=1MiB STEPOP_HTTP_CONCURRENCY=4 \
    "$STEPOP" artifact get "$NGINX_URL/big.bin" "$T/big" --sha256 "$bsum"
check "the bytes are the object's" cmp "$NGINX_ROOT/big.bin" "$T/big"
is_eq "21 ranged GETs (206), the first one's answer naming the size" "$(n206)" 21
is_eq "and no whole GET" "$(n200)" 0
: >"$log"
expect_rc 0 "the default settings (4 MiB parts)" "$STEPOP" artifact get "$NGINX_URL/big.bin" "$T/big-d" --sha256 "$bsum"
is_eq "6 ranged GETs (the object is a little over 20 MiB)" "$(n206)" 6
: >"$log"
expect_rc 0 "STEPOP_HTTP_CONCURRENCY=1: one stream" env STEPOP_HTTP_CONCURRENCY=1 \
    "$STEPOP" artifact get "$NGINX_URL/big.bin" "$T/big-1" --sha256 "$bsum"
is_eq "one whole GET" "$(n200)/$(n206)" 1/0
: >"$NGINX_ROOT/empty.bin"
expect_rc 0 "an empty object" "$STEPOP" artifact get "$NGINX_URL/empty.bin" "$T/empty"
check "arrives empty" test -f "$T/empty" -a ! -s "$T/empty"
expect_rc 0 "an object smaller than a part, unpacked" sh -c \
    "tar -cf '$NGINX_ROOT/small.tar' -C '$ROOT/tests' lib.sh && '$STEPOP' artifact get '$NGINX_URL/small.tar' '$T/small' --unpack"
check "the tree arrives" cmp "$ROOT/tests/lib.sh" "$T/small/lib.sh"
expect_rc 2 "STEPOP_HTTP_CONCURRENCY=0 is a usage error" env STEPOP_HTTP_CONCURRENCY=0 \
    "$STEPOP" artifact get "$NGINX_URL/big.bin" "$T/bad"
err_has "STEPOP_HTTP_CONCURRENCY: expected 1 to 64" "and the message says the range"
expect_rc 2 "STEPOP_HTTP_PART_SIZE below 64 KiB is a usage error" env STEPOP_HTTP_PART_SIZE=1000 \
    "$STEPOP" artifact get "$NGINX_URL/big.bin" "$T/bad"
err_has "STEPOP_HTTP_PART_SIZE" "and the message names the setting"

# ---- faulty.js ------------------------------------------------------------------------------
start_faulty || { not_ok "faulty server starts"; done_testing; }
head -c 5000000 /dev/urandom >"$FAULTY_ROOT/obj.bin"
sum=$(sha256sum "$FAULTY_ROOT/obj.bin" | cut -d' ' -f1)
count() { faulty_log | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin) if $1))"; }
export STEPOP_HTTP_PART_SIZE=1MiB STEPOP_HTTP_CONCURRENCY=4

get() { # RULES DESC [WANT-RC]
    faulty_reset
    rm -rf "$T/got"
    expect_rc "${3:-0}" "$2" "$STEPOP" artifact get "$FAULTY_URL/${1:+_f/$1/}obj.bin" "$T/got" --sha256 "$sum"
}
get "" "5 MB in 1 MiB parts"
is_eq "the first GET asks for the first part" "$(count "e['range']=='bytes=0-1048575' and not e['ifMatch']")" 1
is_eq "4 parts, each pinned with If-Match" "$(count "e['range'] and e['ifMatch'] and e['range']!='bytes=0-1048575'")" 4
check "the last part ends at the object's end" test "$(count "e['range']=='bytes=4194304-4999999'")" = 1
get norangex99 "a server that answers Range with 200: the whole object in one stream"
is_eq "one GET" "$(count "e['method']=='GET'")" 1
get reset300000a2x1 "a part reset midway is resumed"
is_eq "6 GETs" "$(count "e['method']=='GET'")" 6
is_eq "the resume continues the part where it broke, pinned" \
    "$(count "e['range'] and int(e['range'][6:].split('-')[0]) % 1048576 != 0 and e['ifMatch']")" 1

get total5000001a1x1 "a part naming another size" 4
err_has "size changed from 5000000 to 5000001" "and the message gives both sizes"
check "no file is left" test ! -e "$T/got"
get short1000a1x1 "a part that ends early" 4
err_has "wrong Content-Range" "and the message says why"
check "no file is left" test ! -e "$T/got"
get badrangea2x1 "a part whose Content-Range starts elsewhere" 4
check "no file is left" test ! -e "$T/got"
get etaga1x9 "the object replaced after the first GET (a new ETag)" 4
err_has "changed during the download" "and the message says so"
check "no file is left" test ! -e "$T/got"
check "no part file is left" sh -c "! ls -a '$T' | grep -q stepop-part"
mkdir -p "$T/tree"
cp "$FAULTY_ROOT/obj.bin" "$T/tree/"
tar -cf "$FAULTY_ROOT/tree.tar" -C "$T/tree" .
faulty_reset
expect_rc 4 "the same with --unpack: refused" "$STEPOP" artifact get "$FAULTY_URL/_f/etaga1x9/tree.tar" "$T/got-dir" --unpack
check "the destination it would have created does not exist" test ! -e "$T/got-dir"

# The bearer token: on every part to its own host, to no other, and not across a redirect.
fport=${FAULTY_URL##*:}
faulty_reset
expect_rc 0 "a bearer token for the store's host" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=127.0.0.1:$fport "$STEPOP" artifact get "$FAULTY_URL/obj.bin" "$T/tok" --sha256 "$sum"
is_eq "every GET, each part's too, carried it" "$(count "e['method']=='GET' and e['auth']=='present'")/$(count "e['method']=='GET'")" 5/5
check "and it is in no message" sh -c "! grep -q tok-secret '$T/err' '$T/out'"
faulty_reset
expect_rc 0 "a bearer token for another host" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=store.example.com "$STEPOP" artifact get "$FAULTY_URL/obj.bin" "$T/tok2" --sha256 "$sum"
is_eq "no GET carried it" "$(count "e['auth']=='present'")" 0
python3 "$ROOT/tests/servers/redirector.py" "$T/redir.port" "$FAULTY_URL" "$T/redir.log" &
on_exit "kill $!"
for _ in $(seq 100); do [ -s "$T/redir.port" ] && break; sleep 0.05; done
rport=$(cat "$T/redir.port")
faulty_reset
expect_rc 0 "the token's host redirects every part to another port" env STEPOP_HTTP_BEARER_TOKEN=tok-secret \
    STEPOP_HTTP_BEARER_HOST=127.0.0.1:$rport "$STEPOP" artifact get "http://127.0.0.1:$rport/obj.bin" "$T/redir" --sha256 "$sum"
is_eq "the store's host got the token with each of the 5 GETs" "$(sort "$T/redir.log" | uniq -c | awk '{print $1, $2}')" "5 auth"
is_eq "the redirect's target got ranged GETs, none with the token" "$(count "e['range'] and not e['auth']")/$(count "e['auth']")" "5/0"
done_testing
