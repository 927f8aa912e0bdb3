#!/usr/bin/env bash
# Dockerfile.cuda built with Podman, its CUDA base images replaced by a Debian 12 image made here
# with debootstrap (no registry is reachable from the test machines; Debian's mirror is). Without
# a CUDA toolkit in that base the build stage picks the no-CUDA GPU backend, which is all this
# test needs: it checks the stages, the static build inside them, the ENTRYPOINT, and a step run
# through the result and through an image that copies the binary from the `stepop` stage.
# The base image, the build's layers (the static libraries' layer especially) and the images live
# in build/podman/, so only stepop's own sources are compiled again on later runs.
. "$(dirname "$0")/../lib.sh"

command -v debootstrap >/dev/null 2>&1 || skip_all "debootstrap is missing (make deps)"
[ "$(id -u)" = 0 ] || skip_all "debootstrap needs root"
start_podman || { not_ok "podman starts"; done_testing; }
podman_images || { not_ok "test images build"; done_testing; }

MIRROR=${STEPOP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE=localhost/stepop-test/debian:bookworm
if ! podman_cli image exists "$BASE"; then
    t0=$SECONDS
    if debootstrap --variant=minbase bookworm "$T/rootfs" "$MIRROR" >"$T/debootstrap.log" 2>&1 &&
        tar -C "$T/rootfs" -c . | podman_cli import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            - "$BASE" >"$T/import.log" 2>&1; then
        ok "a Debian 12 base image from debootstrap ($((SECONDS - t0)) s)"
    else
        not_ok "a Debian 12 base image from debootstrap"
        tail -20 "$T/debootstrap.log" "$T/import.log" | diag
        done_testing
    fi
    rm -rf "$T/rootfs"
else
    ok "the Debian 12 base image is cached ($BASE)"
fi

IMG=localhost/stepop-test/cuda:test
t0=$SECONDS
# Host networking lets the build stage reach Debian's mirror (apt-get install, apt-get source).
if podman_cli build --network host -f "$ROOT/Dockerfile.cuda" --build-arg "BASE_DEVEL=$BASE" \
    --build-arg "BASE_RUNTIME=$BASE" -t "$IMG" "$ROOT" >"$T/build.log" 2>&1; then
    ok "Dockerfile.cuda builds ($((SECONDS - t0)) s)"
else
    not_ok "Dockerfile.cuda builds"
    tail -40 "$T/build.log" | diag
    done_testing
fi
check "the build stage chose the no-CUDA backend (no toolkit in the base)" grep -q "no-CUDA backend" "$T/build.log"
check "the build stage printed the glibc floor" grep -q "needs glibc >=" "$T/build.log"
is_eq "the runtime image's ENTRYPOINT is stepop run" \
    "$(podman_cli image inspect --format '{{json .Config.Entrypoint}}' "$IMG")" '["/usr/local/bin/stepop","run"]'
expect_rc 0 "stepop runs in the image" podman_cli run --rm --entrypoint /usr/local/bin/stepop "$IMG" version
out_has "libcurl" "... and lists its libraries"
expect_rc 0 "the runtime image's own entrypoint is a plain init without a manifest" \
    podman_cli run --rm "$IMG" -- sh -c 'echo "pid1=$(cat /proc/1/comm)"'
out_has "pid1=stepop" "... supervising the command as PID 1"

# A run through the image's ENTRYPOINT, its manifest on a file store mounted at the same path.
STORE=$T/store
RUN_DIR=$STORE/runs/cuda$$
mkdir -p "$RUN_DIR" "$STORE/data"
printf 'payload\n' >"$STORE/data/in.txt"
manifest "$RUN_DIR/manifest.json" "file://$RUN_DIR" "\"command\":[\"sh\",\"-c\",\"cat \$STEPOP_INPUT_IN > out.txt\"],
  \"inputs\":[{\"name\":\"in\",\"uri\":\"file://$STORE/data/in.txt\"}],\"outputs\":[{\"name\":\"out\",\"path\":\"out.txt\",\"format\":\"file\"}],
  \"workdir\":\"/work\""
expect_rc 0 "a step runs through the image's ENTRYPOINT" \
    podman_cli run --rm -v "$STORE:$STORE" -e "STEPOP_MANIFEST=file://$RUN_DIR/manifest.json" "$IMG"
is_eq "... succeeded" "$(jq_py "$RUN_DIR/status.json" 'd["phase"]')" succeeded
is_eq "... and stored its output" "$(cat "$RUN_DIR/outputs/out" 2>/dev/null)" payload

# The stepop stage: the binary alone, copied into another image (the bare busybox+glibc one).
t0=$SECONDS
if podman_cli build --network host -f "$ROOT/Dockerfile.cuda" --target stepop --build-arg "BASE_DEVEL=$BASE" \
    --build-arg "BASE_RUNTIME=$BASE" -t localhost/stepop-test/cuda-bin:test "$ROOT" >"$T/build-bin.log" 2>&1; then
    ok "the stepop stage builds (from cached layers: $((SECONDS - t0)) s)"
else
    not_ok "the stepop stage builds"
    tail -20 "$T/build-bin.log" | diag
fi
mkdir -p "$T/ctx"
printf 'FROM %s\nCOPY --from=localhost/stepop-test/cuda-bin:test /stepop /usr/local/bin/stepop\nENTRYPOINT ["/usr/local/bin/stepop", "run"]\n' \
    "$BARE_IMAGE" >"$T/ctx/Containerfile"
expect_rc 0 "COPY --from the stepop stage into an image without stepop" \
    podman_cli build -f "$T/ctx/Containerfile" -t localhost/stepop-test/copied:test "$T/ctx"
RUN_DIR=$STORE/runs/copied$$
mkdir -p "$RUN_DIR"
manifest "$RUN_DIR/manifest.json" "file://$RUN_DIR" '"command":["sh","-c","echo from the copied binary"]'
expect_rc 0 "a step runs there" \
    podman_cli run --rm -v "$STORE:$STORE" -e "STEPOP_MANIFEST=file://$RUN_DIR/manifest.json" localhost/stepop-test/copied:test
check "... and ships its log" grep -q "from the copied binary" "$RUN_DIR/logs/1/00000000.log"
podman_cli rmi -f localhost/stepop-test/copied:test >/dev/null 2>&1

done_testing
