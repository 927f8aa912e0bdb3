#!/bin/sh
# static-deps.sh DIR [RELEASE]: builds the static libraries `make static` links that Debian ships
# no usable archive for, from Debian's own source packages (security patches included), into
# DIR/include and DIR/lib. Each library is rebuilt only when its Debian version or its recipe
# changes (DIR/stamps/NAME). Then it checks that every archive build/stepop-static links needs
# nothing but glibc. RELEASE takes the sources from another release of the distribution than the
# system's own (tools/apt-source.sh -r; docs/static.md).
#
# - libcurl: Debian's libcurl.a wants GSSAPI, LDAP, IDN, PSL, SSH, RTMP and brotli, most
#   without a static archive. Ours speaks HTTP/1.1 and HTTP/2 (Debian's libnghttp2.a: the modal
#   flavor's gRPC) and HTTPS (OpenSSL), with zlib for Content-Encoding, unix sockets (the Docker
#   API) and proxies.
# - libarchive: Debian's wants libacl, libxml2, nettle, lz4. Ours has the tar formats and the
#   gzip, bzip2, xz and zstd filters that artifacts/unpack.c enables, nothing else.
# - cJSON: Debian ships no libcjson.a; it is one C file.
# zlib, zstd, xz, bzip2, OpenSSL, expat, libyaml and nghttp2 come from Debian's own static archives (-dev packages).
set -eu
out=$1
release=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)
tools=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out/src" "$out/stamps" "$out/logs" "$out/include" "$out/lib"
jobs=$(nproc 2>/dev/null || echo 2)
cc=${CC:-cc} # the Makefile's compiler, when it passes one

# Debian's hardening flags, as its own packages are built.
CFLAGS=$(dpkg-buildflags --get CFLAGS)
CPPFLAGS=$(dpkg-buildflags --get CPPFLAGS)
export CFLAGS CPPFLAGS

# The Debian versions apt would fetch now ("PKG VERSION" lines), in one apt call; when apt has no
# source indexes (yet) and every library was built before, the stamps' versions stand and apt is
# not touched.
versions() {
    if [ -f "$out/stamps/curl" ] && [ -f "$out/stamps/libarchive" ] && [ -f "$out/stamps/cjson" ] &&
        ! apt-get indextargets --format '$(CREATED_BY)' 2>/dev/null | grep -qx Sources; then
        head -qn1 "$out/stamps/curl" "$out/stamps/libarchive" "$out/stamps/cjson"
    else
        "$tools/apt-source.sh" ${release:+-r "$release"} version curl libarchive cjson
    fi
}

# dep NAME SRCPKG: builds NAME from Debian source package SRCPKG with the shell function
# build_NAME (run in the unpacked source, output in $out/logs/NAME.log) unless its stamp says this
# version was built with this recipe (the function's text, its configure options, the compiler
# and its flags).
dep() {
    name=$1 pkg=$2
    stamp=$out/stamps/$name
    version=$(echo "$versions" | sed -n "s/^$pkg //p")
    want="$pkg $version
$(sed -n "/^build_$name() {/,/^}/p" "$0")
$(eval "echo \"\${${name}_conf:-}\"")
$cc $CFLAGS $CPPFLAGS"
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    echo "  DEP     $name from Debian source $pkg $version (log: $out/logs/$name.log)"
    start=$(date +%s)
    rm -rf "$out/src/$pkg"
    "$tools/apt-source.sh" ${release:+-r "$release"} fetch "$pkg" "$out/src/$pkg"
    dir=$(find "$out/src/$pkg" -mindepth 1 -maxdepth 1 -type d | head -n1)
    # Not in an `if`: there the shell would ignore set -e inside the build function.
    set +e
    (cd "$dir" && "build_$name") >"$out/logs/$name.log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$out/logs/$name.log" >&2
        echo "static-deps.sh: building $name failed; the whole log is $out/logs/$name.log" >&2
        exit 1
    fi
    rm -rf "$out/src/$pkg" # fetched again on a version change; keeps build/ small
    printf '%s\n' "$want" >"$stamp"
    echo "  DEP     $name done in $(($(date +%s) - start))s"
}

curl_conf="--disable-shared --enable-static --with-openssl --with-zlib
    --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict
    --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp
    --disable-gopher --disable-mqtt --disable-manual --disable-ntlm-wb --disable-libcurl-option
    --without-zstd --without-brotli --without-libpsl --without-libidn2 --with-nghttp2
    --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 --without-libssh2
    --without-libssh --without-librtmp --without-libgsasl --without-hyper
    --enable-threaded-resolver --enable-unix-sockets --enable-proxy
    --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs"
build_curl() {
    # The source comes with Debian's GnuTLS and NSS flavour patches applied on top (its rules
    # pop them for the OpenSSL build); take them off, last first (newer releases lack NSS's).
    for p in 99_nss.patch 90_gnutls.patch; do
        if grep -qx "$p" debian/patches/series; then patch -R -p1 <"debian/patches/$p"; fi
    done
    # The shipped configure is used as is: AM_MAINTAINER_MODE keeps automake from regenerating,
    # and Debian's patches to configure.ac and Makefile.am concern GSSAPI, LDAP and zsh only.
    # shellcheck disable=SC2086
    ./configure --prefix="$out" $curl_conf
    make -j"$jobs" -C lib
    make -C lib install
    make -C include install
    rm -f "$out/lib/libcurl.la"
}

libarchive_conf="--disable-shared --enable-static --disable-maintainer-mode
    --disable-bsdtar --disable-bsdcat --disable-bsdcpio --disable-acl --disable-xattr
    --disable-posix-regex-lib --with-zlib --with-bz2lib --with-lzma --with-zstd
    --without-lz4 --without-lzo2 --without-libb2 --without-openssl --without-nettle
    --without-mbedtls --without-cng --without-xml2 --without-expat"
build_libarchive() {
    # Debian's patches to Makefile.am and configure.ac only list new tests and tune the .pc
    # file, so the shipped configure is used; maintainer mode off stops automake from rerunning.
    # shellcheck disable=SC2086
    ./configure --prefix="$out" $libarchive_conf
    make -j"$jobs" libarchive.la
    # Only the library and its two public headers; `make install` would build the tools' tests.
    cp .libs/libarchive.a "$out/lib/"
    cp libarchive/archive.h libarchive/archive_entry.h "$out/include/"
}

build_cjson() {
    "$cc" $CPPFLAGS $CFLAGS -std=c89 -c cJSON.c -o cJSON.o
    ar rcs libcjson.a cJSON.o
    mkdir -p "$out/include/cjson"
    cp libcjson.a "$out/lib/"
    cp cJSON.h "$out/include/cjson/"
}

command -v dpkg-buildflags >/dev/null || { echo "static-deps.sh: dpkg-dev is missing (make deps)" >&2; exit 1; }
versions=$(versions)
dep curl curl
dep libarchive libarchive
dep cjson cjson

# Every archive we link must need nothing beyond itself, the others and glibc: an undefined
# strong symbol no archive and no glibc library defines would be a missing dependency.
sysarchives=""
for l in ssl crypto z zstd lzma bz2 expat yaml nghttp2; do
    a=$("$cc" -print-file-name="lib$l.a")
    [ -f "$a" ] || { echo "static-deps.sh: lib$l.a not found (make deps)" >&2; exit 1; }
    sysarchives="$sysarchives $a"
done
glibc=""
for l in libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1; do
    p=$("$cc" -print-file-name="$l")
    [ -f "$p" ] && glibc="$glibc $p"
done
archives="$out/lib/libcurl.a $out/lib/libarchive.a $out/lib/libcjson.a $sysarchives"
# libc_nonshared.a is glibc's static part (atexit and friends); the GOT symbol comes from the linker.
# shellcheck disable=SC2086
{
    nm -D --defined-only $glibc 2>/dev/null | awk 'NF == 3 { sub(/@.*/, "", $3); print $3 }'
    nm --defined-only $archives "$("$cc" -print-file-name=libc_nonshared.a)" 2>/dev/null | awk 'NF == 3 { print $3 }'
    echo _GLOBAL_OFFSET_TABLE_
} | sort -u >"$out/defined.txt"
# shellcheck disable=SC2086
nm -u $archives 2>/dev/null | awk '$1 == "U" { print $2 }' | sort -u >"$out/undefined.txt"
missing=$(comm -23 "$out/undefined.txt" "$out/defined.txt")
if [ -n "$missing" ]; then
    echo "static-deps.sh: these symbols are defined by no archive and not by glibc:" >&2
    echo "$missing" | head -n 20 >&2
    exit 1
fi
