#!/usr/bin/env bash
# The evil-archive corpus: every unsafe archive is refused, names the entry, exits 4, and writes
# nothing outside the destination (the destination itself stays empty: extraction is staged).
. "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip_all "python3 is needed to craft archives"

work=$T/work/a/b
mkdir -p "$work" "$T/corpus"
python3 - "$T/corpus" "$T" <<'PY'
import io, os, sys, tarfile
out, top = sys.argv[1], sys.argv[2]

def tar(name, entries, mode="w"):
    with tarfile.open(os.path.join(out, name), mode, format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type = e.get("type", tarfile.REGTYPE)
            info.mode = e.get("mode", 0o644)
            info.linkname = e.get("link", "")
            if "major" in e:
                info.devmajor, info.devminor = e["major"], e["minor"]
            data = e.get("data", b"x")
            if info.type == tarfile.REGTYPE:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)

tar("absolute.tar", [{"name": top + "/escaped-absolute"}])
tar("dotdot.tar", [{"name": "ok.txt"}, {"name": "../../../escaped-dotdot"}])
tar("dotdot-inner.tar", [{"name": "a/../../../../escaped-inner"}])
tar("symlink-absolute.tar", [{"name": "evil", "type": tarfile.SYMTYPE, "link": top}])
tar("symlink-dotdot.tar", [{"name": "evil", "type": tarfile.SYMTYPE, "link": "../.."}])
tar("symlink-chain.tar", [{"name": "a", "type": tarfile.SYMTYPE, "link": "."},
                          {"name": "b", "type": tarfile.SYMTYPE, "link": "a/../.."}])
tar("through-symlink.tar", [{"name": "sub", "type": tarfile.DIRTYPE, "mode": 0o755},
                            {"name": "s", "type": tarfile.SYMTYPE, "link": "sub"},
                            {"name": "s/written-through", "data": b"no"}])
tar("symlink-then-file.tar", [{"name": "s", "type": tarfile.SYMTYPE, "link": "../../.."},
                              {"name": "s/escaped-through", "data": b"no"}])
tar("hardlink-dotdot.tar", [{"name": "h", "type": tarfile.LNKTYPE, "link": "../../../escaped-hardlink"}])
tar("hardlink-absolute.tar", [{"name": "h", "type": tarfile.LNKTYPE, "link": "/etc/passwd"}])
tar("hardlink-through-symlink.tar", [{"name": "sub", "type": tarfile.DIRTYPE, "mode": 0o755},
                                     {"name": "sub/f", "data": b"f"},
                                     {"name": "d", "type": tarfile.SYMTYPE, "link": "sub"},
                                     {"name": "h", "type": tarfile.LNKTYPE, "link": "d/f"}])
tar("chardev.tar", [{"name": "null", "type": tarfile.CHRTYPE, "major": 1, "minor": 3}])
tar("blockdev.tar", [{"name": "disk", "type": tarfile.BLKTYPE, "major": 8, "minor": 0}])
tar("fifo.tar", [{"name": "pipe", "type": tarfile.FIFOTYPE}])
tar("setuid.tar", [{"name": "su", "mode": 0o4755}])
tar("setgid.tar", [{"name": "sg", "mode": 0o2755}])
tar("many.tar", [{"name": "f%02d" % i} for i in range(20)])
tar("big.tar.gz", [{"name": "big", "data": b"\0" * (3 << 20)}], mode="w:gz")
with open(os.path.join(out, "not-an-archive.bin"), "wb") as f:
    f.write(os.urandom(4096))
with open(os.path.join(out, "big.tar.gz"), "rb") as f:
    whole = f.read()
with open(os.path.join(out, "truncated.tar.gz"), "wb") as f:
    f.write(whole[: len(whole) // 2])
PY

snapshot() { (cd "$T" && find . -path ./work/a/b/dest -prune -o -print | grep -v '^\./\.check\|^\./out$\|^\./err$' | sort); }
refuse() { # ARCHIVE EXPECTED-MESSAGE [extra args]
    local name=$1 msg=$2
    shift 2
    rm -rf "$work/dest"
    mkdir -p "$work/dest"
    local before after
    before=$(snapshot)
    expect_rc 4 "$name is refused" "$STEPOP" artifact get "file://$T/corpus/$name" "$work/dest" --unpack "$@"
    err_has "$msg" "$name: the message names the problem ($msg)"
    after=$(snapshot)
    if [ "$before" = "$after" ]; then ok "$name: nothing written outside the destination"; else
        not_ok "$name: nothing written outside the destination"
        diff <(echo "$before") <(echo "$after") | diag
    fi
    if [ -z "$(ls -A "$work/dest")" ]; then ok "$name: the destination stays empty"; else
        not_ok "$name: the destination stays empty"
        ls -la "$work/dest" | diag
    fi
}

refuse absolute.tar "absolute path"
refuse dotdot.tar 'entry "../../../escaped-dotdot": ".." component'
refuse dotdot-inner.tar '".." component'
refuse symlink-absolute.tar 'symlink "evil"'
refuse symlink-dotdot.tar 'symlink "evil" -> "../.."'
refuse symlink-chain.tar 'symlink "b" -> "a/../.."'
refuse through-symlink.tar 'entry "s/written-through"'
refuse symlink-then-file.tar 'symlink "s" -> "../../.."'
refuse hardlink-dotdot.tar 'hard link "h"'
refuse hardlink-absolute.tar 'hard link "h"'
refuse hardlink-through-symlink.tar 'passes through the symlink "d"'
refuse chardev.tar 'entry "null": device node'
refuse blockdev.tar 'entry "disk": device node'
refuse fifo.tar 'entry "pipe": FIFO'
refuse setuid.tar 'entry "su": set-user-id or set-group-id bit'
refuse setgid.tar 'entry "sg": set-user-id or set-group-id bit'
refuse many.tar "more than 10 entries" --max-entries 10
STEPOP_UNPACK_MAX_ENTRIES=5 refuse many.tar "more than 5 entries"
refuse big.tar.gz "exceeds the limit of 1048576 bytes" --max-bytes 1MiB
STEPOP_UNPACK_MAX_BYTES=2MiB refuse big.tar.gz "exceeds the limit of 2097152 bytes"

for f in escaped-absolute escaped-dotdot escaped-inner escaped-hardlink; do
    check "no $f anywhere" sh -c "! find / -xdev -name '$f' 2>/dev/null | grep -q ."
done

rm -rf "$work/dest"
expect_rc 1 "random bytes are not an archive" "$STEPOP" artifact get "file://$T/corpus/not-an-archive.bin" "$work/dest" --unpack
err_has "not a tar archive" "the message says so"
expect_rc 1 "a truncated tar.gz fails" "$STEPOP" artifact get "file://$T/corpus/truncated.tar.gz" "$work/dest" --unpack
check "and leaves the destination empty" sh -c "[ -z \"\$(ls -A '$work/dest' 2>/dev/null)\" ]"
check "no staging directory is left behind" sh -c "! ls -a '$work' | grep -q stepop-part"
expect_rc 0 "the limits allow what fits" "$STEPOP" artifact get "file://$T/corpus/many.tar" "$work/dest" --unpack --max-entries 20
done_testing
