#!/usr/bin/env bash
# The az:// store against Azurite in strict mode (every Shared Key signature and SAS checked
# exactly), partly through tests/servers/azure_busy_proxy.py (request log, injected ServerBusy):
# awkward names, Put Blob and Put Block sizes, parallel ranged GETs pinned by If-Match, MD5s,
# ls with markers, stat, rm, SAS (presigned and as credentials), connection strings, account keys,
# retries, and interop with the official client (npm @azure/storage-blob).
. "$(dirname "$0")/../lib.sh"
azurite_available || skip_all "node, azurite or @azure/storage-blob is not installed (make deps)"
# --skipApiVersionCheck: @azure/storage-blob 12.34 speaks 2026-10-06, newer than Azurite knows;
# signatures are checked all the same.
start_azurite --skipApiVersionCheck || { not_ok "Azurite starts"; done_testing; }
start_azure_proxy || { not_ok "the proxy starts"; done_testing; }
check "the official client creates the container" azblob mkcontainer test
export AZURE_STORAGE_CONNECTION_STRING=$AZPROXY_CS STEPOP_AZURE_PUT_THRESHOLD=3MiB STEPOP_AZURE_BLOCK_SIZE=1MiB
sha() { sha256sum "$1" | cut -d' ' -f1; }
json_sha() { sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' "$T/out"; }

# round_trip FILE NAME DESC: put, read back with @azure/storage-blob, get, compare.
round_trip() {
    local f=$1 name=$2 desc=$3
    expect_rc 0 "$desc: put" "$STEPOP" artifact put "$f" "az://test/$name" --json
    check "$desc: the reported sha256 is the file's" test "$(json_sha)" = "$(sha "$f")"
    rm -f "$T/js"
    check "$desc: @azure/storage-blob reads the same bytes" azblob get test "$name" "$T/js"
    check "$desc: ... byte for byte" cmp "$f" "$T/js"
    rm -f "$T/back"
    expect_rc 0 "$desc: get" "$STEPOP" artifact get "az://test/$name" "$T/back" --sha256 "$(sha "$f")"
    check "$desc: byte for byte" cmp "$f" "$T/back"
}

printf 'x' >"$T/one"
: >"$T/zero"
for name in "plain.txt" "with space/and  two.txt" "plus+equals=dollar\$tilde~.bin" "unicode/é ü 日本/ключ.txt" \
    "odd/!'()*,;:@&[]#.txt" "percent%20literal.txt"; do
    round_trip "$T/one" "keys/$name" "name \"$name\""
done
is_eq "no request was refused (Azurite checks every signature)" "$(azproxy_count "e['status'] == 403")" 0

azproxy_reset
round_trip "$T/zero" "sizes/zero" "0 bytes"
round_trip "$T/one" "sizes/one" "1 byte"
head -c $((3 * 1048576)) /dev/urandom >"$T/under"
head -c $((3 * 1048576 + 1)) /dev/urandom >"$T/over"
azproxy_reset
round_trip "$T/under" "sizes/under" "at the threshold"
is_eq "... went out as one Put Blob" "$(azproxy_count "e['method']=='PUT' and 'comp=block' in e['query']")" 0
check "... with the blob's MD5 recorded" test "$(azblob md5 test sizes/under)" = "$(openssl md5 -binary "$T/under" | base64)"
azproxy_reset
round_trip "$T/over" "sizes/over" "one byte over the threshold"
is_eq "... went out as 4 Put Block" "$(azproxy_count "e['method']=='PUT' and 'comp=block&' in e['query']")" 4
is_eq "... and one Put Block List" "$(azproxy_count "e['method']=='PUT' and e['query']=='comp=blocklist'")" 1
check "... which recorded the whole blob's MD5" test "$(azblob md5 test sizes/over)" = "$(openssl md5 -binary "$T/over" | base64)"
check "ranged GETs fetched it" test "$(azproxy_count "e['method']=='GET' and e['range']")" -ge 4
check "... pinned to the ETag" test "$(azproxy_count "e['method']=='GET' and e['if_match']")" -ge 3

# A larger blob with the default block size and concurrency, straight to Azurite.
head -c $((96 * 1048576)) /dev/urandom >"$T/big"
start=$SECONDS
AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS STEPOP_AZURE_PUT_THRESHOLD= STEPOP_AZURE_BLOCK_SIZE= \
    round_trip "$T/big" "sizes/96MiB.bin" "96 MiB in 8 MiB blocks"
echo "# 96 MiB round trip: $((SECONDS - start)) s"

# Trees as archives (streams of unknown length, so the threshold is found by reading ahead).
make_tree "$T/src" 5
azproxy_reset
expect_rc 0 "a 5 MiB tree as tar.zst" "$STEPOP" artifact put "$T/src" az://test/tree.tar.zst --json
tsha=$(json_sha)
check "... went out in blocks" test "$(azproxy_count "e['method']=='PUT' and 'comp=block&' in e['query']")" -ge 2
expect_rc 0 "get --unpack" "$STEPOP" artifact get az://test/tree.tar.zst "$T/tree" --unpack --sha256 "$tsha"
check "the tree arrives intact" same_tree "$T/src" "$T/tree"

# A tampered MD5: the bytes no longer match what the service records.
cp "$T/over" "$T/tamper"
"$STEPOP" artifact put "$T/tamper" az://test/tamper.bin >/dev/null 2>&1
check "the official client replaces the blob's MD5" azblob setmd5 test tamper.bin "$(printf 'not the md5' | openssl md5 -binary | base64)"
expect_rc 4 "a download whose MD5 differs is refused (exit 4, as a digest mismatch)" \
    "$STEPOP" artifact get az://test/tamper.bin "$T/tampered"
err_has "but the service records" "the message says why"
check "no file is left behind" test ! -e "$T/tampered"

# Interop the other way: what the official client wrote, stepop reads.
head -c $((20 * 1048576 + 7)) /dev/urandom >"$T/js-big"
check "@azure/storage-blob uploads 20 MiB (its own blocks)" azblob put test from-js/big.bin "$T/js-big"
expect_rc 0 "stepop downloads it" "$STEPOP" artifact get az://test/from-js/big.bin "$T/js-back"
check "... byte for byte" cmp "$T/js-big" "$T/js-back"
check "@azure/storage-blob uploads a small file" azblob put test from-js/small.txt "$T/one"
expect_rc 0 "stepop downloads it" "$STEPOP" artifact get az://test/from-js/small.txt "$T/js-small"
check "... byte for byte" cmp "$T/one" "$T/js-small"

# ls with pages of two names (NextMarker followed).
azproxy_reset
expect_rc 0 "ls a prefix over several pages" env STEPOP_AZURE_LIST_PAGE=2 "$STEPOP" artifact ls az://test/keys/ --json
for name in '"plain.txt"' '"with space/"' '"plus+equals=dollar$tilde~.bin"' '"unicode/"' '"odd/"' '"percent%20literal.txt"'; do
    out_has "\"name\":$name" "ls lists $name"
done
check "markers were followed" test "$(azproxy_count "'marker=' in e['query']")" -ge 2
expect_rc 0 "ls without the trailing slash" "$STEPOP" artifact ls az://test/keys/unicode
out_has "é ü 日本/" "lists the next level"

expect_rc 0 "stat a blob" "$STEPOP" artifact stat az://test/sizes/over --json
out_has "\"size\":$((3 * 1048576 + 1))" "stat gives the size"
out_has '"etag":"' "and the ETag"
expect_rc 0 "stat a prefix" "$STEPOP" artifact stat az://test/keys --json
out_has '"is_dir":true' "a prefix is a directory"
expect_rc 3 "stat of a missing blob exits 3" "$STEPOP" artifact stat az://test/nothing/here
expect_rc 3 "get of a missing blob exits 3" "$STEPOP" artifact get az://test/nothing "$T/nothing"
err_has "BlobNotFound" "and names Azure's code"
check "no file is left behind" test ! -e "$T/nothing"
expect_rc 3 "a missing container exits 3" "$STEPOP" artifact get az://no-such-container/x "$T/x"
err_has "ContainerNotFound" "and names Azure's code"
expect_rc 0 "rm a blob" "$STEPOP" artifact rm "az://test/keys/plain.txt"
expect_rc 3 "it is gone" "$STEPOP" artifact stat "az://test/keys/plain.txt"
expect_rc 3 "rm of a missing blob exits 3" "$STEPOP" artifact rm "az://test/keys/plain.txt"
expect_rc 2 "an invalid container name is a usage error" "$STEPOP" artifact stat az://Bad_Name/x
err_has "az://CONTAINER/BLOB" "that shows the form"

# Service SAS (presign) against the official client's.
expect_rc 0 "presign a GET" "$STEPOP" artifact presign "az://test/sizes/under" --expires 10m
url=$(cat "$T/out")
check "curl downloads the blob with it" curl -sSf -o "$T/presigned" "$url"
check "the same bytes" cmp "$T/under" "$T/presigned"
expect_rc 0 "presign a PUT" "$STEPOP" artifact presign "az://test/presigned/up load.bin" --method PUT
url=$(cat "$T/out")
check "curl uploads with it (x-ms-blob-type: BlockBlob)" curl -sSf -T "$T/over" -H "x-ms-blob-type: BlockBlob" "$url"
check "@azure/storage-blob reads what arrived" azblob get test "presigned/up load.bin" "$T/presigned-up"
check "... byte for byte" cmp "$T/over" "$T/presigned-up"
expect_rc 0 "presign at a fixed time in the past (STEPOP_NOW)" env STEPOP_NOW=2020-01-01T00:00:00Z \
    "$STEPOP" artifact presign "az://test/sizes/under" --expires 1h
check "an expired SAS is refused" sh -c "! curl -sf -o /dev/null '$(cat "$T/out")'"
sig_of() { tr '&' '\n' <<<"$1" | sed -n 's/^sig=//p'; }
for case in "r|GET|sizes/one" "cw|PUT|odd/name with spaces+plus.bin" "r|GET|unicode/é ü 日本/ключ.txt"; do
    IFS='|' read -r perms method name <<<"$case"
    ours=$(env STEPOP_NOW=2030-01-02T03:04:05Z "$STEPOP" artifact presign "az://test/$name" --method "$method" --expires 2h)
    theirs=$(AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS azblob sas test "$name" "$perms" 2030-01-02T05:04:05Z 2021-12-02)
    is_eq "the SAS for $method $name is generateBlobSASQueryParameters's" "$(sig_of "${ours#*\?}")" "$(sig_of "$theirs")"
done
check "a request for another blob with that SAS is refused (Azurite is no rubber stamp)" \
    bash -c "url=\$('$STEPOP' artifact presign az://test/sizes/under) && ! curl -sf -o /dev/null \"\${url/under?/over?}\""

# Credentials other than the connection string's key.
csas=$(AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS azblob csas test racwdl 2099-01-01T00:00:00Z)
sas_env="env -u AZURE_STORAGE_CONNECTION_STRING AZURE_STORAGE_ACCOUNT=$AZURITE_ACCOUNT STEPOP_AZURE_BLOB_ENDPOINT=$AZPROXY/$AZURITE_ACCOUNT"
expect_rc 0 "AZURE_STORAGE_SAS_TOKEN: put" $sas_env AZURE_STORAGE_SAS_TOKEN="?$csas" "$STEPOP" artifact put "$T/over" az://test/sas/over.bin
expect_rc 0 "AZURE_STORAGE_SAS_TOKEN: ls" $sas_env AZURE_STORAGE_SAS_TOKEN="$csas" "$STEPOP" artifact ls az://test/sas/
out_has "over.bin" "lists the blob"
expect_rc 0 "AZURE_STORAGE_SAS_TOKEN: get" $sas_env AZURE_STORAGE_SAS_TOKEN="$csas" "$STEPOP" artifact get az://test/sas/over.bin "$T/sas-back"
check "... byte for byte" cmp "$T/over" "$T/sas-back"
expect_rc 1 "a SAS without write permission cannot put" $sas_env \
    AZURE_STORAGE_SAS_TOKEN="$(AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS azblob csas test rl 2099-01-01T00:00:00Z)" \
    "$STEPOP" artifact put "$T/one" az://test/sas/refused
err_has "AuthorizationPermissionMismatch" "Azure's code says why"
expect_rc 0 "a connection string with SharedAccessSignature" env \
    AZURE_STORAGE_CONNECTION_STRING="BlobEndpoint=$AZPROXY/$AZURITE_ACCOUNT;SharedAccessSignature=$csas" \
    "$STEPOP" artifact stat az://test/sas/over.bin
expect_rc 0 "AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY" $sas_env AZURE_STORAGE_KEY="$AZURITE_KEY" \
    "$STEPOP" artifact get az://test/sizes/over "$T/key-back"
check "... byte for byte" cmp "$T/over" "$T/key-back"
wrong=$(head -c 64 /dev/urandom | base64 -w0)
expect_rc 1 "a wrong account key is refused" $sas_env AZURE_STORAGE_KEY="$wrong" "$STEPOP" artifact stat az://test/sizes/over
err_has "HTTP 403" "with the service's status"
check "the message holds no key" sh -c "! grep -qF -e '$wrong' -e '$AZURITE_KEY' '$T/err'"
expect_rc 2 "a key that is not base64 is a usage error" $sas_env AZURE_STORAGE_KEY='not base64!' "$STEPOP" artifact stat az://test/x
expect_rc 2 "no account at all is a usage error" env -u AZURE_STORAGE_CONNECTION_STRING "$STEPOP" artifact stat az://test/x
err_has "AZURE_STORAGE_ACCOUNT" "naming the variable"
expect_rc 0 "a connection string in another order, with EndpointSuffix and spaces" env \
    AZURE_STORAGE_CONNECTION_STRING=" AccountKey=$AZURITE_KEY; BlobEndpoint=$AZPROXY/$AZURITE_ACCOUNT/;AccountName=$AZURITE_ACCOUNT;EndpointSuffix=core.windows.net" \
    "$STEPOP" artifact stat az://test/sizes/over

# https://ACCOUNT.blob.core.windows.net URLs (no request is made: presign with a fixed time).
expect_rc 0 "an https:// Azure Blob URL is this store's" env -u AZURE_STORAGE_CONNECTION_STRING \
    AZURE_STORAGE_ACCOUNT=myacct AZURE_STORAGE_KEY="$AZURITE_KEY" STEPOP_NOW=2030-01-02T03:04:05Z \
    "$STEPOP" artifact presign "https://myacct.blob.core.windows.net/data/a b.txt" --expires 1h
out_has "https://myacct.blob.core.windows.net/data/a%20b.txt?sv=2021-12-02&se=2030-01-02T04%3A04%3A05Z&sr=b&sp=r&sig=" \
    "and is signed as a blob of account myacct"
expect_rc 1 "another account's URL gets none of AZURE_STORAGE_ACCOUNT's key" env -u AZURE_STORAGE_CONNECTION_STRING \
    AZURE_STORAGE_ACCOUNT=myacct AZURE_STORAGE_KEY="$AZURITE_KEY" STEPOP_NOW=2030-01-02T03:04:05Z \
    "$STEPOP" artifact presign "https://other.blob.core.windows.net/data/x" --expires 1h
err_has "no Azure token for https://storage.azure.com/.default" "it asks the identity chain instead"
expect_rc 2 "presign with only a SAS token is refused" $sas_env AZURE_STORAGE_SAS_TOKEN="$csas" \
    "$STEPOP" artifact presign az://test/sizes/over
err_has "cannot sign another" "saying why"

# Azure's transient errors: ServerBusy and OperationTimedOut are retried, others are not.
azproxy_reset
azproxy_busy 2
expect_rc 0 "a put through two ServerBusy answers" "$STEPOP" artifact put "$T/under" az://test/busy/under
is_eq "... two requests were answered busy" "$(azproxy_count "e['busy']")" 2
check "... and the blob arrived" azblob get test busy/under "$T/busy-back"
check "... intact" cmp "$T/under" "$T/busy-back"
azproxy_reset
azproxy_busy 3 OperationTimedOut 500
expect_rc 0 "a block upload through three OperationTimedOut answers" "$STEPOP" artifact put "$T/over" az://test/busy/over
expect_rc 0 "and a download through two ServerBusy" sh -c "curl -s -X POST '$AZPROXY/_/busy?n=2' && '$STEPOP' artifact get az://test/busy/over '$T/busy-over'"
check "... intact" cmp "$T/over" "$T/busy-over"
azproxy_reset
azproxy_busy 1 InvalidHeaderValue 400
expect_rc 1 "a 400 InvalidHeaderValue is not retried" "$STEPOP" artifact put "$T/one" az://test/busy/no
is_eq "... one request" "$(azproxy_count True)" 1
azproxy_reset
azproxy_busy 50
expect_rc 1 "ServerBusy that does not end gives up" env STEPOP_HTTP_ATTEMPTS=3 "$STEPOP" artifact stat az://test/busy/under
err_has "ServerBusy" "naming the code"
is_eq "... after STEPOP_HTTP_ATTEMPTS tries" "$(azproxy_count True)" 3
azproxy_busy 0
done_testing
