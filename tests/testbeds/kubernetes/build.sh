#!/bin/bash
# build.sh: builds kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from
# Debian's `kubernetes` source package and puts them, with Debian's etcd, into a cache keyed by
# the source version:
#   ${STEPOP_TESTBED_CACHE:-/var/cache/stepop-testbeds}/kubernetes-<version>/bin
# Does nothing when that directory is complete. Safe to re-run after an interruption: everything
# is built in a temporary directory and moved into place at the end. Prints the bin directory.
# About 11 minutes on 2 cores, 1.6 GB RAM, 2 GB of temporary disk (README.md).
set -euo pipefail
# All of it is one function, read before it runs: editing this file mid-build cannot derail it.
main() {
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
cache=${STEPOP_TESTBED_CACHE:-/var/cache/stepop-testbeds}
bins="kube-apiserver kube-controller-manager kube-scheduler kubectl etcd"

# Others share the cores: the whole build runs at the lowest priority.
if [ "$(nice)" -lt 19 ]; then exec nice -n 19 "$0"; fi

log() { echo "kubernetes testbed: $*" >&2; }
sudo_=""
[ "$(id -u)" -eq 0 ] || sudo_=sudo

# The source version names the cache; tools/apt-source.sh adds the deb-src entries apt needs.
version=$("$root/tools/apt-source.sh" version kubernetes | awk '$1 == "kubernetes" {print $2}')
[ -n "$version" ] || { log "apt knows no source package kubernetes"; exit 1; }
dest=$cache/kubernetes-$version
complete() {
    local b
    for b in $bins; do [ -x "$dest/bin/$b" ] || return 1; done
    [ -f "$dest/VERSION" ]
}
if complete; then echo "$dest/bin"; exit 0; fi

mkdir -p "$cache"
# One build at a time per cache; a second caller waits and then finds the cache complete.
exec 9>"$cache/.kubernetes.lock"
flock 9
if complete; then echo "$dest/bin"; exit 0; fi

need=""
for p in golang-go rsync make dpkg-dev; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
    log "installing$need"
    # shellcheck disable=SC2086
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >&2
fi

# Left by an interrupted build (none can be running: we hold the lock).
rm -rf "$cache"/.kubernetes-build.*
work=$(mktemp -d "$cache/.kubernetes-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM HUP
log "building $version in $work"

# The source tree (Debian's patches applied).
"$root/tools/apt-source.sh" fetch kubernetes "$work/src"
tree=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -1)
if [ -z "$tree" ] || [ ! -d "$tree/cmd/kube-apiserver" ]; then log "no kubernetes tree in $work/src"; exit 1; fi

# Binary packages unpacked, not installed: reflect2 1.0.2 sources and etcd.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" golang-github-modern-go-reflect2-dev etcd-server >&2)
mkdir -p "$work/debs"
for d in "$work"/*.deb; do dpkg -x "$d" "$work/debs"; done
newrefl=$work/debs/usr/share/gocode/src/github.com/modern-go/reflect2
[ -f "$newrefl/reflect2.go" ] || { log "reflect2 sources missing in golang-github-modern-go-reflect2-dev"; exit 1; }
# The vendored reflect2 1.0.1 crashes under Go >= 1.18 (mapiterinit SIGSEGV on the first pod
# status PATCH); 1.0.2 has the same API.
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
mkdir -p "$tree/vendor/github.com/modern-go/reflect2"
find "$newrefl" -maxdepth 1 -type f -name '*.go' ! -name '*_test.go' -exec cp {} "$tree/vendor/github.com/modern-go/reflect2/" \;
for f in "$newrefl"/*.s; do [ -f "$f" ] && cp "$f" "$tree/vendor/github.com/modern-go/reflect2/"; done

# GOPATH mode: module mode with -mod=vendor wants go.mod updates this tree cannot have offline.
export GOPATH=$work/gopath GOCACHE=$work/gocache GO111MODULE=off GOPROXY=off GOFLAGS='' CGO_ENABLED=0
export HOME=$work/home
mkdir -p "$GOPATH/src/k8s.io" "$HOME"
ln -s "$tree" "$GOPATH/src/k8s.io/kubernetes"
cd "$GOPATH/src/k8s.io/kubernetes"

# pkg/generated/openapi/zz_generated.openapi.go is not in the tarball; the apiserver needs it.
log "make gen_openapi"
make gen_openapi >"$work/gen_openapi.log" 2>&1 || { tail -30 "$work/gen_openapi.log" >&2; exit 1; }
[ -f pkg/generated/openapi/zz_generated.openapi.go ] || { log "gen_openapi made no openapi file"; exit 1; }

# -trimpath and fixed version data make byte-identical rebuilds.
upstream=${version#*really}
upstream=${upstream%%-*}
upstream=${upstream%%+*}
vpkg=k8s.io/kubernetes/vendor/k8s.io/component-base/version
ldflags="-s -w -X $vpkg.gitVersion=v$upstream -X $vpkg.gitMajor=${upstream%%.*}"
ldflags="$ldflags -X $vpkg.gitMinor=$(echo "$upstream" | cut -d. -f2) -X $vpkg.gitTreeState=clean"
ldflags="$ldflags -X $vpkg.buildDate=1970-01-01T00:00:00Z"
mkdir -p "$work/out/bin"
log "go build (about 10 minutes on 2 cores)"
go build -trimpath -ldflags "$ldflags" -o "$work/out/bin/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubectl >&2
cp "$work/debs/usr/bin/etcd" "$work/out/bin/etcd"

{
    echo "kubernetes source $version (built as v$upstream)"
    echo "etcd-server $(dpkg-deb -f "$work"/etcd-server_*.deb Version)"
    echo "reflect2 $(dpkg-deb -f "$work"/golang-github-modern-go-reflect2-dev_*.deb Version)"
    go version
} >"$work/out/VERSION"
# shellcheck disable=SC2086
(cd "$work/out/bin" && sha256sum $bins) >"$work/out/SHA256SUMS"

cd /
rm -rf "$dest"
mv "$work/out" "$dest"
log "installed in $dest"
echo "$dest/bin"
}
main
