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
done_testing
