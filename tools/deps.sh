#!/bin/sh
# Installs the Debian/Ubuntu packages that the build and the tests need; fast when all are there.
# `tools/deps.sh static` installs only what `make static` needs (a build stage of an image);
# `tools/deps.sh bench` what `make bench` needs.
set -eu
# scdoc and python3: `make man`, and the man pages of `make install` (docs/testing.md).
build="build-essential pkg-config git libcurl4-openssl-dev libarchive-dev libcjson-dev zlib1g-dev
       libssl-dev libzstd-dev libexpat1-dev libyaml-dev scdoc python3"
# make fuzz and make tsan (docs/testing.md): clang, and its runtime libraries with libFuzzer
# (libclang-rt-dev is libclang-rt-14-dev on Debian 12); gcc brings ThreadSanitizer's libtsan.
fuzz="clang libclang-rt-dev"
# make static: dpkg-dev for apt-get source and dpkg-buildflags; the static archives of the
# libraries taken from Debian as they are (docs/static.md).
static="build-essential dpkg-dev libssl-dev zlib1g-dev libzstd-dev libexpat1-dev liblzma-dev
        libbz2-dev libyaml-dev libnghttp2-dev"
# Containers (tests/integration/docker_*.sh): Podman with runc (crun fails on cgroup hybrid hosts),
# busybox-static for the test images, debootstrap for Dockerfile.cuda's local base image.
tests="nginx-light libnginx-mod-http-dav-ext openssl tar zstd gzip pigz curl util-linux procps time
       libarchive-tools python3
       nodejs npm valgrind python3-botocore awscli rclone
       protobuf-compiler python3-protobuf python3-google-auth python3-jwt python3-cryptography python3-yaml python3-crcmod
       podman runc busybox-static debootstrap
       man-db bash-completion zsh fish
       slurm-wlm munge openssh-server openssh-client jq"
# make bench: the peers stepop is measured against (docs/benchmarks.md), s3rver included.
bench="nginx-light libnginx-mod-http-dav-ext curl tar zstd gzip pigz time python3 python3-boto3 awscli rclone
       nodejs npm podman runc busybox-static
       protobuf-compiler python3-protobuf python3-google-auth python3-jwt python3-cryptography python3-crcmod"
case ${1:-all} in
static) want=$static ;;
bench) want=$bench ;;
all) want="$build $static $tests $fuzz" ;;
*) echo "usage: tools/deps.sh [static|bench]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
    case " $missing " in *" $p "*) continue ;; esac
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
# The test servers' npm packages (s3rver, the emulators and official clients the fakes are
# checked with), pinned by tests/servers/package-lock.json.
servers=$(dirname "$0")/../tests/servers
[ "${1:-all}" = static ] && exit 0
if [ ! -f "$servers/node_modules/.package-lock.json" ] || [ "$servers/package-lock.json" -nt "$servers/node_modules/.package-lock.json" ]; then
    echo "installing the test servers' npm packages" >&2
    # `npm install --no-save` takes the versions the lock pins, as `npm ci` would, but tolerates
    # optional platform packages the registry does not serve: cbor-x's native @cbor-extract/*
    # builds are missing from the registry these machines use, and `npm ci` refuses a lock without
    # them (cbor-x, under the modal SDK, works without them).
    npm install --prefix "$servers" --no-save --no-audit --no-fund --loglevel=error >/dev/null
fi
