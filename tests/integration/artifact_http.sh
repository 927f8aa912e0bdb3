#!/usr/bin/env bash
# The http store against a real nginx with WebDAV: round trips in every format, stat, ls, rm.
. "$(dirname "$0")/../lib.sh"
command -v nginx >/dev/null || skip_all "nginx is not installed (make deps)"
start_nginx || { not_ok "nginx starts"; done_testing; }
make_tree "$T/src" 100
u=$NGINX_URL/artifacts

for fmt in tar tar.gz tar.zst; do
    expect_rc 0 "put a tree as $fmt over HTTP" "$STEPOP" artifact put "$T/src" "$u/tree.$fmt" --json
    sha=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' "$T/out")
    check "$fmt: the server holds exactly the reported object" \
        test "$sha" = "$(sha256sum "$NGINX_ROOT/artifacts/tree.$fmt" | cut -d' ' -f1)"
    expect_rc 0 "get --unpack $fmt over HTTP" "$STEPOP" artifact get "$u/tree.$fmt" "$T/out-$fmt" --unpack --sha256 "$sha"
    check "$fmt: tree survives byte for byte" same_tree "$T/src" "$T/out-$fmt"
done

big=$T/src/nested/deeper/deepest/weights.bin
expect_rc 0 "put a 100 MiB file" "$STEPOP" artifact put "$big" "$u/deep/path/weights.bin"
check "nginx has it" cmp "$big" "$NGINX_ROOT/artifacts/deep/path/weights.bin"
expect_rc 0 "get it back" "$STEPOP" artifact get "$u/deep/path/weights.bin" "$T/got.bin"
check "byte for byte" cmp "$big" "$T/got.bin"
check "uploads never wait for 100-continue" sh -c "! grep -q ' 417 ' '$T/nginx/logs/access.log'"

printf '' >"$T/empty"
expect_rc 0 "put an empty file" "$STEPOP" artifact put "$T/empty" "$u/empty"
expect_rc 0 "get an empty file" "$STEPOP" artifact get "$u/empty" "$T/empty-back"
check "empty file round trip" cmp "$T/empty" "$T/empty-back"

expect_rc 0 "stat over HTTP" "$STEPOP" artifact stat "$u/deep/path/weights.bin" --json
out_has '"size":104857600' "HEAD gives the size"
out_has '"etag":' "and an ETag"
expect_rc 0 "ls over WebDAV PROPFIND" "$STEPOP" artifact ls "$u/" --json
out_has '"name":"tree.tar.zst"' "ls lists objects"
out_has '"name":"deep/"' "ls lists prefixes"
expect_rc 0 "rm over HTTP" "$STEPOP" artifact rm "$u/deep/path/weights.bin"
check "it is gone from the server" test ! -e "$NGINX_ROOT/artifacts/deep/path/weights.bin"
expect_rc 3 "a missing object exits 3" "$STEPOP" artifact get "$u/missing.bin" "$T/missing"
err_has "HTTP 404" "and says 404"
check "no file is created for a 404" test ! -e "$T/missing"
expect_rc 3 "stat of a missing object exits 3" "$STEPOP" artifact stat "$u/missing.bin"
expect_rc 1 "a refused connection fails after bounded retries" env STEPOP_HTTP_ATTEMPTS=3 \
    "$STEPOP" artifact get "http://127.0.0.1:1/x" "$T/x"
err_has "Couldn't connect" "and says why"
expect_rc 0 "user:password in a URI works" "$STEPOP" artifact stat "http://user:s3cret@127.0.0.1:$NGINX_PORT/artifacts/tree.tar"
expect_rc 3 "and a failure never prints the password" "$STEPOP" artifact stat "http://user:s3cret@127.0.0.1:$NGINX_PORT/nope"
check "the password is not in the message" sh -c "! grep -q s3cret '$T/err'"
# Credentials in URIs are never printed or stored (outputs.json keeps a redacted URI, status
# prints none, a run prefix cannot hold one).
export XDG_DATA_HOME=$T/data HOME=$T/home
mkdir -p "$HOME"
secret_out="http://user:s3cret@127.0.0.1:$NGINX_PORT/artifacts/res.txt?X-Amz-Signature=sigs3cret&v=1"
printf '{"command": ["sh", "-c", "echo 42 > res.txt"], "outputs": [{"name": "res", "path": "res.txt", "format": "file", "uri": "%s"}]}' \
    "$secret_out" >"$T/secret-step.json"
expect_rc 0 "a step with an output URI holding credentials" "$STEPOP" submit "$T/secret-step.json"
check "the output reached the server" grep -qx 42 "$NGINX_ROOT/artifacts/res.txt"
runs=$XDG_DATA_HOME/stepop/runs
r=$(ls -t "$runs" | head -1)
is_eq "outputs.json stores the URI redacted, plain parameters kept" "$(jq_py "$runs/$r/outputs.json" "d['outputs'][0]['uri']")" \
    "http://***@127.0.0.1:$NGINX_PORT/artifacts/res.txt?X-Amz-Signature=REDACTED&v=1"
check "no credential is in outputs.json or status.json" sh -c "! grep -q s3cret '$runs/$r/outputs.json' '$runs/$r/status.json'"
check "nor in what submit printed" sh -c "! grep -q s3cret '$T/out' '$T/err'"
mkdir -p "$NGINX_ROOT/runs/$r"
cp "$runs/$r/status.json" "$NGINX_ROOT/runs/$r/"
expect_rc 0 "stepop status of a run URI with user:password" "$STEPOP" status "http://user:s3cret@127.0.0.1:$NGINX_PORT/runs/$r/"
out_has "uri:       http://***@127.0.0.1:$NGINX_PORT/runs/$r/" "prints the URI redacted"
check "never the password" sh -c "! grep -q s3cret '$T/out' '$T/err'"
expect_rc 0 "stepop status --json" "$STEPOP" status "http://user:s3cret@127.0.0.1:$NGINX_PORT/runs/$r/" --json
check "never the password" sh -c "! grep -q s3cret '$T/out' '$T/err'"
expect_rc 3 "stepop cancel of a run URI with user:password and no submission" "$STEPOP" cancel "http://user:s3cret@127.0.0.1:$NGINX_PORT/runs/$r/"
check "never the password" sh -c "! grep -q s3cret '$T/out' '$T/err'"
expect_rc 2 "a store URI with user:password is refused at submit" "$STEPOP" submit --store "http://user:s3cret@127.0.0.1:$NGINX_PORT/store/" -- true
err_has "holds a credential" "saying why"
check "without printing it" sh -c "! grep -q s3cret '$T/out' '$T/err'"
check "and nothing was written to that store" test ! -e "$NGINX_ROOT/store"
expect_rc 2 "so is --dry-run" "$STEPOP" submit --dry-run --store "http://user:s3cret@127.0.0.1:$NGINX_PORT/store/" -- true
check "which prints no credential" sh -c "! grep -q s3cret '$T/out' '$T/err'"
done_testing
