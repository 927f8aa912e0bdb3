#!/bin/sh
# Installs the Debian/Ubuntu packages that the build and the tests need; fast when all are there.
set -eu
build="build-essential pkg-config git libcurl4-openssl-dev libarchive-dev libcjson-dev zlib1g-dev
       libssl-dev libzstd-dev libexpat1-dev"
tests="nginx-light libnginx-mod-http-dav-ext openssl tar zstd gzip pigz curl util-linux procps
       libarchive-tools python3
       nodejs valgrind"
missing=""
for p in $build $tests; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# nodejs may come from outside Debian (nvm, NodeSource): a working `node` is enough.
case " $missing " in *" nodejs "*) command -v node >/dev/null 2>&1 && missing=$(echo "$missing" | sed 's/ nodejs//') ;; esac
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
