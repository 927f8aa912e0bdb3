#!/usr/bin/env bash
# The command line: dispatch, help, version, usage errors and their exit codes, progress.
. "$(dirname "$0")/../lib.sh"

expect_rc 0 "stepop help" "$STEPOP" help
out_has "artifact" "help lists the artifact command"
expect_rc 2 "no command is a usage error" "$STEPOP"
expect_rc 2 "an unknown command exits 2" "$STEPOP" frobnicate
err_has 'unknown command "frobnicate"' "and names it"
expect_rc 2 "an unknown option exits 2" "$STEPOP" artifact get --frob x y
err_has "unknown option --frob" "and names it"
expect_rc 2 "an unknown subcommand exits 2" "$STEPOP" artifact copy a b
expect_rc 0 "artifact --help" "$STEPOP" artifact --help
out_has "get URI DEST" "help shows usage"
expect_rc 0 "artifact get --help" "$STEPOP" artifact get --help
expect_rc 0 "help artifact" "$STEPOP" help artifact
expect_rc 0 "stepop version" "$STEPOP" version
out_has "libcurl" "version lists libcurl"
out_has "libarchive" "version lists libarchive"
out_has "commit" "version gives the commit"
expect_rc 0 "stepop version --json" "$STEPOP" version --json
check "version --json is JSON with a version" python3 -c "import json,sys; d=json.load(open('$T/out')); assert d['version'] and d['libraries']['zstd']"
check "version --json names the sha256 implementation" python3 -c "import json,sys; d=json.load(open('$T/out')); assert d['libraries']['sha256'].startswith('libcrypto EVP, ')"
if grep -qw sha_ni /proc/cpuinfo 2>/dev/null; then
    check "and says the CPU's SHA instructions are used where the CPU has them" grep -q '"libcrypto EVP, CPU SHA instructions"' "$T/out"
fi
expect_rc 2 "version takes no arguments" "$STEPOP" version extra

mkdir -p "$T/d"
head -c 30000000 /dev/urandom >"$T/d/blob"
if command -v script >/dev/null; then
    script -qfec "env -u STEPOP_NO_PROGRESS $STEPOP artifact put $T/d file://$T/s/p.tar" "$T/tty.log" >/dev/null 2>&1
    check "a terminal shows progress with bytes and rate" grep -q "MiB.*/s" "$T/tty.log"
else
    ok "# SKIP script(1) not installed"
fi
env -u STEPOP_NO_PROGRESS "$STEPOP" artifact put "$T/d" "file://$T/s/q.tar" >"$T/out" 2>"$T/err"
check "a pipe shows no progress" sh -c "! grep -q '/s' '$T/err'"
expect_rc 0 "STEPOP_LOG_FORMAT=json makes diagnostics JSON lines" env STEPOP_LOG_FORMAT=json "$STEPOP" artifact put \
    "$T/d" "file://$T/s/x.tar.gz" --level 1
expect_rc 3 "errors in JSON too" env STEPOP_LOG_FORMAT=json "$STEPOP" artifact stat "file://$T/s/none"
check "the error is one JSON object" python3 -c "import json; d=json.loads(open('$T/err').read()); assert d['level']=='error' and 'none' in d['msg']"
expect_rc 2 "a bad --level is a usage error" "$STEPOP" artifact put "$T/d" "file://$T/s/y.tar.zst" --level 99
expect_rc 2 "a malformed STEPOP_UNPACK_MAX_BYTES is a usage error" env STEPOP_UNPACK_MAX_BYTES=lots \
    "$STEPOP" artifact get "file://$T/s/p.tar" "$T/o" --unpack
err_has "STEPOP_UNPACK_MAX_BYTES" "naming the variable"
done_testing
