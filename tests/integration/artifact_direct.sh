#!/usr/bin/env bash
# Downloads written with O_DIRECT past STEPOP_DIRECT_WRITE (artifacts/transfer.c): every byte
# arrives and is hashed, the last partial page too; a changed byte fails the --sha256 check and
# leaves nothing behind; a filesystem without O_DIRECT (tmpfs) gets the same bytes; bad settings
# are refused.
. "$(dirname "$0")/../lib.sh"
command -v nginx >/dev/null || skip_all "nginx is not installed (make deps)"
start_nginx || { not_ok "nginx starts"; done_testing; }
u=$NGINX_URL

# Not a whole number of pages, so the end is written buffered after the direct part.
head -c $((70 * 1048576 + 12345)) /dev/urandom >"$NGINX_ROOT/big.bin"
want=$(sha256sum "$NGINX_ROOT/big.bin" | cut -d' ' -f1)

expect_rc 0 "a 70 MiB download (direct writes from 64 MiB, the default)" \
    "$STEPOP" artifact get "$u/big.bin" "$T/d1/big.bin" --json --sha256 "$want"
check "byte for byte" cmp "$NGINX_ROOT/big.bin" "$T/d1/big.bin"
out_has "\"sha256\":\"$want\"" "the reported sha256 is the file's"
check "no staging file is left" sh -c "! ls -A '$T/d1' | grep -q stepop-part"

if command -v strace >/dev/null; then
    # LeakSanitizer cannot run under ptrace: an ASan build (ASAN_INTEGRATION) skips its leak check here.
    noleak=ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
    rm -rf "$T/d2"
    expect_rc 0 "under strace" env "$noleak" strace -f -qq -e trace=fcntl -o "$T/strace.log" \
        "$STEPOP" artifact get "$u/big.bin" "$T/d2/big.bin"
    check "the file is switched to O_DIRECT" grep -q 'F_SETFL, .*O_DIRECT' "$T/strace.log"
    check "and back for the last partial page" sh -c "grep F_SETFL '$T/strace.log' | tail -1 | grep -vq O_DIRECT"
    check "byte for byte" cmp "$NGINX_ROOT/big.bin" "$T/d2/big.bin"
    rm -rf "$T/d3"
    expect_rc 0 "STEPOP_DIRECT_WRITE=off" env "$noleak" STEPOP_DIRECT_WRITE=off strace -f -qq -e trace=fcntl \
        -o "$T/strace-off.log" "$STEPOP" artifact get "$u/big.bin" "$T/d3/big.bin"
    check "never uses O_DIRECT" sh -c "! grep -q O_DIRECT '$T/strace-off.log'"
    check "byte for byte" cmp "$NGINX_ROOT/big.bin" "$T/d3/big.bin"
else
    ok "# SKIP strace is not installed"
fi

# Direct from the first byte, on sizes around a page.
for n in 1 4095 4096 4097 1048576 $((3 * 1048576 + 1)); do
    head -c "$n" /dev/urandom >"$NGINX_ROOT/s$n.bin"
    expect_rc 0 "$n bytes with STEPOP_DIRECT_WRITE=0" env STEPOP_DIRECT_WRITE=0 \
        "$STEPOP" artifact get "$u/s$n.bin" "$T/s$n.bin" --sha256 "$(sha256sum "$NGINX_ROOT/s$n.bin" | cut -d' ' -f1)"
    check "$n bytes: byte for byte" cmp "$NGINX_ROOT/s$n.bin" "$T/s$n.bin"
done

# tmpfs: O_DIRECT may be refused (older kernels) or taken; either way the same bytes.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    shm=$(mktemp -d /dev/shm/stepop-direct.XXXXXX)
    on_exit "rm -rf '$shm'"
    expect_rc 0 "a download to tmpfs with STEPOP_DIRECT_WRITE=0" env STEPOP_DIRECT_WRITE=0 \
        "$STEPOP" artifact get "$u/s$((3 * 1048576 + 1)).bin" "$shm/x.bin"
    check "byte for byte" cmp "$NGINX_ROOT/s$((3 * 1048576 + 1)).bin" "$shm/x.bin"
    rm -rf "$shm"
else
    ok "# SKIP /dev/shm is not writable"
fi

# One byte changed on the server, inside the part written directly: the digest must see it.
cp "$NGINX_ROOT/big.bin" "$NGINX_ROOT/bad.bin"
printf '\x00' | dd of="$NGINX_ROOT/bad.bin" bs=1 seek=$((68 * 1048576 + 7)) conv=notrunc 2>/dev/null
[ "$(cmp "$NGINX_ROOT/big.bin" "$NGINX_ROOT/bad.bin" 2>&1 | wc -l)" = 1 ] ||
    printf '\x01' | dd of="$NGINX_ROOT/bad.bin" bs=1 seek=$((68 * 1048576 + 7)) conv=notrunc 2>/dev/null
mkdir -p "$T/d4"
expect_rc 4 "a changed byte fails the sha256 check (exit 4)" \
    "$STEPOP" artifact get "$u/bad.bin" "$T/d4/big.bin" --sha256 "$want"
err_has "sha256 mismatch" "and says so"
check "no file under the final name" test ! -e "$T/d4/big.bin"
check "and no staging file" sh -c "[ -z \"\$(ls -A '$T/d4')\" ]"

expect_rc 2 "a bad STEPOP_DIRECT_WRITE is refused" env STEPOP_DIRECT_WRITE=lots \
    "$STEPOP" artifact get "$u/s1.bin" "$T/d5/x.bin"
err_has "STEPOP_DIRECT_WRITE" "naming the variable"
check "and writes nothing" test ! -e "$T/d5/x.bin"
done_testing
