#!/bin/sh
# apt-source.sh [-r RELEASE] version PKG...  prints "PKG VERSION" for the source packages apt
#                                           would fetch
# apt-source.sh [-r RELEASE] fetch PKG DIR    unpacks that source package (Debian's patches
#                                           applied) under DIR
#
# `apt-get source` needs deb-src entries, which Debian and Ubuntu images usually lack. When apt has
# none for the wanted release, this adds deb-src twins of the distribution's own deb entries
# (those whose suite is the system's codename or codename-*: third-party repositories often
# publish no sources and would make `apt-get update` fail) in a file of ours, then updates the
# indexes once. Running it again changes nothing.
#
# -r RELEASE takes the sources from another release of the same distribution, on the same mirror
# and keyring (for instance bookworm's on a bullseye build system: docs/static.md); without it
# they come from the system's own release, security and point updates included.
set -eu
release=""
if [ "${1:-}" = -r ]; then
    release=$2
    shift 2
fi
list=/etc/apt/sources.list.d/stepop-deb-src${release:+-$release}.sources
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Does apt have source indexes for the wanted release (the system's own: its codename or codename-*)?
have_sources() {
    apt-get indextargets --format '$(CREATED_BY) $(RELEASE)' 2>/dev/null |
        if [ -n "$release" ]; then grep -qx "Sources $release"; else grep -qE "^Sources $(codename)(-.*)?$"; fi
}

codename() {
    # shellcheck disable=SC1091
    . /etc/os-release
    echo "${VERSION_CODENAME:-}"
}

# deb822 stanzas from one-line `deb` entries and from `Types: deb` stanzas of our codename; with
# a release, from those of the codename's main suite, for that release instead.
derive() {
    code=$1
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # deb [options] URI SUITE COMPONENTS...: options are dropped except signed-by.
        awk -v code="$code" -v rel="$release" '
            /^[[:space:]]*deb[[:space:]]/ {
                line = $0; signed = ""
                sub(/^[[:space:]]*deb[[:space:]]+/, "", line)
                if (line ~ /^\[/) {
                    opts = substr(line, 2, index(line, "]") - 2)
                    line = substr(line, index(line, "]") + 1)
                    if (match(opts, /signed-by=[^ ]+/)) signed = substr(opts, RSTART + 10, RLENGTH - 10)
                }
                n = split(line, w, " ")
                if (n < 3 || (w[2] != code && (rel != "" || index(w[2], code "-") != 1))) next
                if (rel != "") w[2] = rel
                comps = w[3]
                for (i = 4; i <= n; i++) comps = comps " " w[i]
                printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n", w[1], w[2], comps
                if (signed != "") printf "Signed-By: %s\n", signed
                print ""
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && [ "$f" != "$list" ] || continue
        # Copy each stanza whose types include deb and whose suites are ours, as deb-src.
        awk -v code="$code" -v rel="$release" '
            function flush() {
                if (isdeb && ours) {
                    sub(/\nTypes:[^\n]*/, "\nTypes: deb-src", st)
                    if (rel != "") sub(/\nSuites:[^\n]*/, "\nSuites: " rel, st)
                    print substr(st, 2)
                }
                st = "\n"; isdeb = 0; ours = 0
            }
            BEGIN { st = "\n" }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == code || (rel == "" && index($i, code "-") == 1)) ours = 1 }
            { st = st $0 "\n" }
            END { flush() }' "$f"
    done
}

ensure_deb_src() {
    have_sources && return 0
    code=$(codename)
    [ -n "$code" ] || { echo "apt-source.sh: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
    if [ ! -f "$list" ]; then
        stanzas=$(derive "$code")
        [ -n "$stanzas" ] || { echo "apt-source.sh: no deb entry for $code to derive deb-src entries from" >&2; exit 1; }
        echo "apt-source.sh: adding deb-src entries for ${release:-$code} in $list" >&2
        printf '# Added by stepop tools/apt-source.sh for `apt-get source` (make static).\n%s\n' "$stanzas" |
            $SUDO tee "$list" >/dev/null
    fi
    $SUDO apt-get update -qq
    have_sources || { echo "apt-source.sh: apt still has no source indexes for ${release:-$code}" >&2; exit 1; }
}

command -v dpkg-source >/dev/null || { echo "apt-source.sh: dpkg-source is missing (make deps)" >&2; exit 1; }
ensure_deb_src
cmd=${1:-}
case $cmd in
version)
    shift
    # The .dsc files apt would fetch name the versions (without epochs): "PKG VERSION" lines.
    v=$(apt-get source --print-uris -qq $(for p; do echo "$p${release:+/$release}"; done) 2>/dev/null | sed -n "s/^'[^']*' \([^_ ]*\)_\([^ ]*\)\.dsc .*/\1 \2/p")
    for pkg; do
        echo "$v" | grep -q "^$pkg " || { echo "apt-source.sh: apt knows no source package $pkg" >&2; exit 1; }
    done
    echo "$v"
    ;;
fetch)
    mkdir -p "$3"
    # The download goes to our own directory, which apt's sandbox user may not be able to write.
    (cd "$3" && apt-get source -qq -o APT::Sandbox::User="$(id -un)" "$2${release:+/$release}" >/dev/null)
    ;;
*) echo "usage: apt-source.sh [-r RELEASE] version PKG... | fetch PKG DIR" >&2; exit 2 ;;
esac
