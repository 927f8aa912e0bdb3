#!/usr/bin/env bash
# `stepop install DEST`: the binary copies itself (the kubernetes flavor's inject init container).
. "$(dirname "$0")/../lib.sh"

expect_rc 0 "install into a directory that does not exist yet" "$STEPOP" install "$T/a/b/stepop"
check "the copy is executable, mode 0755" test "$(stat -c %a "$T/a/b/stepop")" = 755
check "the copy is the same binary" cmp "$STEPOP" "$T/a/b/stepop"
expect_rc 0 "the copy runs" "$T/a/b/stepop" version
out_has "libcurl" "and is stepop"
check "no temporary file is left beside it" test "$(ls "$T/a/b")" = stepop
echo old >"$T/a/b/other"
chmod 0600 "$T/a/b/other"
expect_rc 0 "install replaces a file" "$STEPOP" install "$T/a/b/other"
check "the replaced file is the binary, mode 0755" sh -c "cmp -s '$STEPOP' '$T/a/b/other' && test \$(stat -c %a '$T/a/b/other') = 755"
expect_rc 2 "a directory as DEST is a usage error" "$STEPOP" install "$T/a"
err_has "is a directory" "and says so"
expect_rc 2 "no DEST is a usage error" "$STEPOP" install
err_has "expected one argument, DEST" "and says what is missing"
expect_rc 2 "two arguments are a usage error" "$STEPOP" install "$T/x" "$T/y"
touch "$T/file"
expect_rc 1 "a parent that is a file fails" "$STEPOP" install "$T/file/stepop"
err_has "$T/file" "naming the path"
expect_rc 0 "install --help" "$STEPOP" install --help
out_has "usage: stepop install DEST" "shows usage"
expect_rc 0 "help lists install" "$STEPOP" help
out_has "install" "in the command list"
done_testing
