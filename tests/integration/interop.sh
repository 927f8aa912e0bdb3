#!/usr/bin/env bash
# Archives written by stepop are read by GNU tar and bsdtar; archives written by GNU tar (and
# pigz, zstd) are read by stepop.
. "$(dirname "$0")/../lib.sh"
command -v bsdtar >/dev/null || skip_all "bsdtar is not installed (make deps)"
make_tree "$T/src" 2
store=$T/store

for fmt in tar tar.gz tar.zst; do
    "$STEPOP" artifact put "$T/src" "file://$store/s.$fmt" >/dev/null 2>&1
    mkdir -p "$T/gnu-$fmt" "$T/bsd-$fmt"
    case $fmt in tar) z="" ;; tar.gz) z=-z ;; tar.zst) z=--zstd ;; esac
    check "GNU tar extracts stepop's $fmt without warnings" sh -c "tar $z -xpf '$store/s.$fmt' -C '$T/gnu-$fmt' 2>'$T/gnu.err' && [ ! -s '$T/gnu.err' ] || { cat '$T/gnu.err'; false; }"
    check "GNU tar's copy is identical ($fmt)" same_tree "$T/src" "$T/gnu-$fmt"
    check "bsdtar extracts stepop's $fmt" bsdtar -xpf "$store/s.$fmt" -C "$T/bsd-$fmt"
    check "bsdtar's copy is identical ($fmt)" same_tree "$T/src" "$T/bsd-$fmt"
done

tar -C "$T/src" -cf "$store/gnu.tar" .
tar -C "$T/src" -czf "$store/gnu.tar.gz" .
tar -C "$T/src" --zstd -cf "$store/gnu.tar.zst" .
tar -C "$T/src" -cf - . | pigz -p 2 >"$store/pigz.tar.gz"
tar -C "$T/src" --format=gnu -cf "$store/gnu-format.tar" .
tar -C "$T/src" --format=posix -cf - . | xz >"$store/gnu.tar.xz"
for a in gnu.tar gnu.tar.gz gnu.tar.zst pigz.tar.gz gnu-format.tar gnu.tar.xz; do
    expect_rc 0 "stepop unpacks $a" "$STEPOP" artifact get "file://$store/$a" "$T/x-$a" --unpack
    check "$a: identical to the source" same_tree "$T/src" "$T/x-$a"
done
done_testing
