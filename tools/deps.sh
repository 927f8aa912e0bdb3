#!/bin/sh
# Installs the Debian/Ubuntu packages that the build and the tests need; fast when all are there.
set -eu
build="build-essential pkg-config git libcurl4-openssl-dev libarchive-dev libcjson-dev zlib1g-dev
       libssl-dev libzstd-dev libexpat1-dev"
tests="nginx-light libnginx-mod-http-dav-ext openssl tar zstd gzip pigz curl util-linux procps time
       libarchive-tools python3
       nodejs npm valgrind python3-botocore awscli rclone"
missing=""
for p in $build $tests; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# nodejs may come from outside Debian (nvm, NodeSource): a working `node` is enough.
case " $missing " in *" nodejs "*) command -v node >/dev/null 2>&1 && missing=$(echo "$missing" | sed 's/ nodejs//') ;; esac
case " $missing " in *" npm "*) command -v npm >/dev/null 2>&1 && missing=$(echo "$missing" | sed 's/ npm//') ;; esac
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The test servers' npm packages (s3rver), pinned by tests/servers/package-lock.json.
servers=$(dirname "$0")/../tests/servers
if [ ! -f "$servers/node_modules/.package-lock.json" ] || [ "$servers/package-lock.json" -nt "$servers/node_modules/.package-lock.json" ]; then
    echo "installing the test servers' npm packages" >&2
    npm ci --prefix "$servers" --no-audit --no-fund --loglevel=error >/dev/null
fi
