#!/usr/bin/env bash
# The rooms include only what sits below them (docs/architecture.md#layers):
#   runtime (core) <- cloud <- artifacts, gpu <- flavors, entrypoint <- commands
# and inside cloud/ a platform's folder includes only its own folder and cloud/*.h.
# A command (main.c, version.c, *_cmd.c, *_cmds.c) may include any room. One recorded exception:
# the manifest (runtime/manifest.[ch]) checks URIs against the store registry and names output
# formats, from artifacts/store.h and artifacts/pack.h.
. "$(dirname "$0")/../lib.sh"
cd "$ROOT" || exit 1

allowed() { # ROOM -> the rooms it may include
    case $1 in
    runtime) echo "runtime" ;;
    cloud) echo "runtime cloud" ;;
    artifacts) echo "runtime cloud artifacts" ;;
    gpu) echo "runtime gpu" ;;
    flavors) echo "runtime cloud artifacts flavors" ;;
    entrypoint) echo "runtime cloud artifacts gpu entrypoint" ;;
    esac
}

# The room of a path inside the tree: its first folder (cloud/aws/x.c is in cloud).
room_of() { echo "${1%%/*}"; }

check_file() { # FILE: prints one line per include that breaks the rule
    local f=$1 room inc target troom
    room=$(room_of "$f")
    case ${f##*/} in main.c | version.c | *_cmd.c | *_cmds.c) return 0 ;; esac
    while IFS= read -r inc; do
        target=$(realpath -m --relative-to="$ROOT" "$(dirname "$f")/$inc")
        troom=$(room_of "$target")
        # Inside cloud/, one platform's folder does not include another's (cloud/*.h is shared).
        if [ "$room" = cloud ] && [ "$troom" = cloud ]; then
            local mine=${f#cloud/} theirs=${target#cloud/}
            mine=${mine%%/*} theirs=${theirs%%/*}
            case $theirs in *.h) continue ;; esac
            [ "$mine" = "$theirs" ] && continue
            echo "$f includes $target (a cloud platform includes only its own folder and cloud/*.h)"
            continue
        fi
        case " $(allowed "$room") " in *" $troom "*) continue ;; esac
        case "$f:$target" in
        runtime/manifest.c:artifacts/store.h | runtime/manifest.[ch]:artifacts/pack.h) continue ;;
        esac
        echo "$f includes $target ($room may include: $(allowed "$room"))"
    done < <(sed -nE 's/^#include "([^"]+)".*/\1/p' "$f")
}

rooms="runtime cloud artifacts gpu flavors entrypoint"
for room in $rooms; do
    [ -d "$room" ] || continue
    files=$(find "$room" -name '*.[ch]' ! -path '*/static/*' | sort)
    bad=$(for f in $files; do check_file "$f"; done)
    if [ -z "$bad" ]; then
        ok "$room/ includes only the rooms below it"
    else
        not_ok "$room/ includes only the rooms below it"
        echo "$bad" | sed 's/^/#   /'
    fi
done

# The checker itself: a file that breaks the rule is found.
mkdir -p "$T/cloud/aws" "$T/cloud/kube"
printf '#include "../aws/sigv4.h"\n#include "../api.h"\n' >"$T/cloud/kube/cross.c"
reports() { (cd "$1" && ROOT=$1 check_file "$2"); } # TREE FILE
mkdir -p "$T/cloud/x" "$T/runtime"
printf '#include "../../flavors/flavor.h"\n' >"$T/cloud/x/bad.c"
out=$(reports "$T" cloud/x/bad.c)
check "an include upwards (cloud -> flavors) is reported" grep -q 'cloud/x/bad.c includes flavors/flavor.h' <<<"$out"
out=$(reports "$T" cloud/kube/cross.c)
check "one cloud platform including another's is reported, cloud/api.h is not" \
    test "$out" = "cloud/kube/cross.c includes cloud/aws/sigv4.h (a cloud platform includes only its own folder and cloud/*.h)"
printf '#include "../artifacts/store.h"\n' >"$T/runtime/other.c"
out=$(reports "$T" runtime/other.c)
check "the manifest's exception covers the manifest only" grep -q 'runtime/other.c includes artifacts/store.h' <<<"$out"
done_testing
