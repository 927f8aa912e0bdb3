#!/usr/bin/env bash
# Builds the images the container tests share (tests/lib.sh: podman_images, kbed_busybox_image)
# before tests/run.sh starts those tests side by side: built by one of them while another
# checks for it, an image could be replaced under a running test.
. "$(dirname "$0")/../lib.sh"
command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 || exit 0
start_podman || exit 1
podman_images || { cat "$T/import.log" >&2; exit 1; }
kbed_busybox_image || { cat "$T/import.log" >&2; exit 1; }
