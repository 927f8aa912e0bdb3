#!/usr/bin/env bash
# The static binary (make static, docs/static.md): it needs no shared library but glibc's, says
# which library versions it carries, and does real round trips over HTTP and HTTPS, also from a
# directory holding nothing but itself and glibc, with a RHEL-style CA bundle location and an
# empty environment.
. "$(dirname "$0")/../lib.sh"
S=$ROOT/build/stepop-static
[ -x "$S" ] || skip_all "build/stepop-static is not built (make static)"
command -v nginx >/dev/null || skip_all "nginx is not installed (make deps)"
command -v openssl >/dev/null || skip_all "openssl is not installed (make deps)"

# Only glibc's libraries, as ldd and the dynamic section see them.
ldd "$S" >"$T/ldd" 2>&1
glibc_only() {
    local bad
    bad=$(grep -vE '^\s*(linux-vdso\.so\.1|(/[^ ]*/)?ld-linux[^ ]*\.so\.[0-9]+|lib(c|m|pthread|dl|rt)\.so\.[0-9]+ => /[^ ]+) \(0x' "$T/ldd")
    [ -z "$bad" ] || { echo "not glibc:"; echo "$bad"; return 1; }
}
check "ldd lists nothing but glibc's libraries" glibc_only
cat "$T/ldd" | diag
check "tools/static-check.sh agrees" "$ROOT/tools/static-check.sh" "$S"
"$ROOT/tools/static-check.sh" "$S" 2>&1 | diag
# The shim in runtime/static/arc4random.c keeps glibc 2.36's arc4random_buf out.
no_arc4random() { ! objdump -T "$S" | grep arc4random; }
check "no reference to glibc's arc4random_buf (which would raise the floor to 2.36)" no_arc4random

# The version report names every library with its version, and the built ones match the
# Debian source versions in their stamps.
expect_rc 0 "stepop-static version runs" "$S" version
for lib in libcurl tls libarchive zlib zstd cjson libcrypto; do
    if grep -qE "^  $lib +.*[0-9]+\.[0-9]+" "$T/out"; then ok "version lists $lib with its version"; else
        not_ok "version lists $lib with its version"
        diag <"$T/out"
    fi
done
out_has "OpenSSL/" "libcurl uses OpenSSL"
check "libcurl speaks HTTP/2 with Debian's libnghttp2.a (the modal flavor's gRPC)" grep -Eq "^  http2 +nghttp2/[0-9]+\.[0-9]+" "$T/out"
stamp_version() { sed -n "1s/^$1 \([^-]*\).*/\1/p" "$ROOT/build/static-deps/stamps/$2" 2>/dev/null; }
v=$(stamp_version curl curl)
[ -n "$v" ] && check "libcurl is the one built from Debian's source ($v)" grep -Eq "^  libcurl +$v\$" "$T/out"
v=$(stamp_version libarchive libarchive)
[ -n "$v" ] && out_has "libarchive $v" "libarchive is the one built from Debian's source ($v)"
v=$(stamp_version cjson cjson)
[ -n "$v" ] && check "cJSON is the one built from Debian's source ($v)" grep -Eq "^  cjson +$v\$" "$T/out"

make_tree "$T/tree"
# Round trips over plain HTTP, in both archive formats.
start_nginx || { not_ok "nginx starts"; done_testing; }
for fmt in tar.gz tar.zst; do
    u=$NGINX_URL/static/tree.$fmt
    expect_rc 0 "put $fmt over HTTP" "$S" artifact put "$T/tree" "$u"
    expect_rc 0 "get --unpack $fmt over HTTP" "$S" artifact get "$u" "$T/http-$fmt" --unpack
    check "the $fmt tree came back identical" same_tree "$T/tree" "$T/http-$fmt"
done

# And over HTTPS with a throwaway CA.
start_nginx tls || { not_ok "nginx with TLS starts"; done_testing; }
CA=$NGINX_CERT
HTTPS_ROOT=$NGINX_ROOT
# The certificate names 127.0.0.1 too: the empty environment below has no /etc/hosts.
HTTPS_URL=https://127.0.0.1:$NGINX_PORT
expect_rc 1 "a server signed by an unknown CA is refused" "$S" artifact put "$T/tree" "$HTTPS_URL/x.tar.zst"
err_has "TLS verification failed" "and the message says why"
for fmt in tar.gz tar.zst; do
    u=$HTTPS_URL/static/tree.$fmt
    expect_rc 0 "put $fmt over HTTPS (STEPOP_CA_BUNDLE)" env STEPOP_CA_BUNDLE="$CA" "$S" artifact put "$T/tree" "$u"
    expect_rc 0 "get --unpack $fmt over HTTPS (SSL_CERT_FILE)" env SSL_CERT_FILE="$CA" "$S" artifact get "$u" "$T/https-$fmt" --unpack
    check "the $fmt tree came back identical over HTTPS" same_tree "$T/tree" "$T/https-$fmt"
done

# An "empty" system: a directory holding only the binary, the glibc files ldd names, and a CA
# bundle where RHEL-family images keep it (Debian's path, libcurl's built-in one, is absent),
# run with an empty environment. chroot needs root; without it, a user namespace may do.
R=$T/root
mkdir -p "$R/work" "$R/etc/pki/tls/certs"
cp "$S" "$R/stepop"
for f in $(sed -n 's/.*=> \(\/[^ ]*\) (0x.*/\1/p; s/^\s*\(\/[^ ]*\) (0x.*/\1/p' "$T/ldd"); do
    mkdir -p "$R$(dirname "$f")"
    cp -L "$f" "$R$f"
done
cp -a "$T/tree" "$R/work/tree"
chroot=$(command -v chroot || echo /usr/sbin/chroot)
if [ "$(id -u)" -eq 0 ]; then
    in_root() { env -i "$chroot" "$R" "$@"; }
elif unshare -r true 2>/dev/null; then
    in_root() { env -i "$(command -v unshare)" -r "$chroot" "$R" "$@"; }
else
    in_root() { return 99; }
fi
if in_root /stepop version >"$T/out" 2>"$T/err"; [ $? -eq 99 ]; then
    ok "# SKIP cannot chroot here (not root, no user namespaces)"
else
    check "the empty system holds only the binary and glibc" test "$(find "$R" -type f -not -path "$R/work/*" | wc -l)" -eq $((1 + $(grep -c '/' "$T/ldd")))
    expect_rc 0 "stepop-static runs with nothing but glibc and an empty environment" in_root /stepop version
    out_has "libcurl" "and reports its libraries"
    expect_rc 1 "without any CA bundle, HTTPS is refused" in_root /stepop artifact stat "$HTTPS_URL/static/tree.tar.zst"
    err_has "STEPOP_CA_BUNDLE" "and the message says how to fix it"
    cp "$CA" "$R/etc/pki/tls/certs/ca-bundle.crt"
    expect_rc 0 "the RHEL-family CA bundle is found without any setting: get --unpack tar.zst" \
        in_root /stepop artifact get "$HTTPS_URL/static/tree.tar.zst" /work/back --unpack
    check "the tree came back identical" same_tree "$T/tree" "$R/work/back"
    expect_rc 0 "put tar.gz over HTTPS from the empty system" in_root /stepop artifact put /work/tree "$HTTPS_URL/static/from-root.tar.gz"
    check "the archive arrived" test -s "$HTTPS_ROOT/static/from-root.tar.gz"
    expect_rc 0 "and the dynamic build reads it back" env SSL_CERT_FILE="$CA" "$STEPOP" artifact get "$HTTPS_URL/static/from-root.tar.gz" "$T/from-root" --unpack
    check "identical" same_tree "$T/tree" "$T/from-root"
fi
done_testing
