#!/usr/bin/env bash
# The az:// store with Entra bearer tokens: Azurite over https with --oauth basic (it checks each
# token's audience, issuer and expiry, not its signature) and tokens from the identity chain
# (cloud/azure/auth.h) fetched from tests/servers/azure_auth_fake.py; user delegation SAS.
. "$(dirname "$0")/../lib.sh"
azurite_available || skip_all "node, azurite or @azure/storage-blob is not installed (make deps)"
command -v openssl >/dev/null || skip_all "openssl is missing"
start_azure_auth_fake || skip_all "the Entra fake does not start (python3-jwt, python3-cryptography)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/azurite.key" -out "$T/azurite.crt" -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >"$T/openssl.log" 2>&1 ||
    { not_ok "a certificate for Azurite"; diag <"$T/openssl.log"; done_testing; }
start_azurite --skipApiVersionCheck --oauth basic --cert "$T/azurite.crt" --key "$T/azurite.key" ||
    { not_ok "Azurite starts over https with --oauth basic"; done_testing; }
export NODE_EXTRA_CA_CERTS=$T/azurite.crt
check "the official client (Shared Key over https) creates the container" azblob mkcontainer test

# A user with a service principal and no storage key.
unset AZURE_STORAGE_CONNECTION_STRING
export AZURE_STORAGE_ACCOUNT=$AZURITE_ACCOUNT STEPOP_AZURE_BLOB_ENDPOINT=$AZURITE_URL STEPOP_CA_BUNDLE=$T/azurite.crt
export AZURE_TENANT_ID=$AZURE_FAKE_TENANT AZURE_CLIENT_ID=$AZURE_FAKE_SECRET_CLIENT AZURE_CLIENT_SECRET=$AZURE_FAKE_SECRET
export AZURE_AUTHORITY_HOST=$AZURE_AUTH_FAKE_URL STEPOP_AZURE_PUT_THRESHOLD=2MiB STEPOP_AZURE_BLOCK_SIZE=1MiB
head -c $((5 * 1048576 + 3)) /dev/urandom >"$T/five"
printf 'small\n' >"$T/small"
expect_rc 0 "put with a bearer token (Put Blob)" "$STEPOP" artifact put "$T/small" az://test/tok/small.txt
expect_rc 0 "put with a bearer token (6 blocks in parallel)" "$STEPOP" artifact put "$T/five" az://test/tok/five.bin
is_eq "one token per process, for the storage scope" \
    "$(azure_auth_count "e.get('resource','').startswith('https://storage.azure.com') and e.get('status')==200")" 2
is_eq "and none for another scope" "$(azure_auth_count "not e.get('resource','').startswith('https://storage.azure.com')")" 0
js() { AZURE_STORAGE_CONNECTION_STRING=$AZURITE_CS azblob "$@"; }
check "the official client reads what arrived" js get test tok/five.bin "$T/js-five"
check "... byte for byte" cmp "$T/five" "$T/js-five"
expect_rc 0 "get with a bearer token (ranged GETs)" "$STEPOP" artifact get az://test/tok/five.bin "$T/back"
check "... byte for byte" cmp "$T/five" "$T/back"
expect_rc 0 "ls" "$STEPOP" artifact ls az://test/tok/
out_has "five.bin" "lists the blob"
expect_rc 0 "stat" "$STEPOP" artifact stat az://test/tok/small.txt
expect_rc 0 "rm" "$STEPOP" artifact rm az://test/tok/small.txt
expect_rc 3 "it is gone" "$STEPOP" artifact stat az://test/tok/small.txt

# User delegation SAS: Get User Delegation Key with the token, then the SAS signed with it.
expect_rc 0 "presign a GET as a user delegation SAS" "$STEPOP" artifact presign az://test/tok/five.bin --expires 10m
url=$(cat "$T/out")
out_has "&skoid=" "it names the delegation key"
check "curl downloads with it" curl -sSf --cacert "$T/azurite.crt" -o "$T/udk" "$url"
check "... byte for byte" cmp "$T/five" "$T/udk"
expect_rc 0 "presign a PUT" "$STEPOP" artifact presign az://test/tok/up.bin --method PUT
check "curl uploads with it" curl -sSf --cacert "$T/azurite.crt" -T "$T/small" -H "x-ms-blob-type: BlockBlob" "$(cat "$T/out")"
check "the official client reads what arrived" js get test tok/up.bin "$T/up"
check "... byte for byte" cmp "$T/small" "$T/up"
check "a read SAS does not write" sh -c "! curl -sf --cacert '$T/azurite.crt' -T '$T/small' -H 'x-ms-blob-type: BlockBlob' '$url'"

# The audience matters: Azurite takes the storage token and refuses an ARM one.
token() { # SCOPE: a token from the fake, by the client credentials grant
    curl -s "$AZURE_AUTH_FAKE_URL/$AZURE_FAKE_TENANT/oauth2/v2.0/token" -d grant_type=client_credentials \
        --data-urlencode "client_id=$AZURE_FAKE_SECRET_CLIENT" --data-urlencode "client_secret=$AZURE_FAKE_SECRET" \
        --data-urlencode "scope=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
list_with() { curl -s -o /dev/null -w '%{http_code}' --cacert "$T/azurite.crt" -H "Authorization: Bearer $1" \
    -H "x-ms-version: 2021-12-02" "$AZURITE_URL/test?restype=container&comp=list"; }
is_eq "a storage-scoped token lists the container" "$(list_with "$(token https://storage.azure.com/.default)")" 200
is_eq "an ARM-scoped token is refused" "$(list_with "$(token https://management.azure.com/.default)")" 403

# A token refused with 401 is fetched afresh once, and the request sent again: the proxy answers
# the first request 401 InvalidAuthenticationInfo itself.
start_azure_proxy --upstream-tls || { not_ok "the proxy starts"; done_testing; }
before=$(azure_auth_count "e.get('status')==200")
azproxy_busy 1 InvalidAuthenticationInfo 401
expect_rc 0 "a 401 to a bearer token is answered with a fresh token" \
    env STEPOP_AZURE_BLOB_ENDPOINT="$AZPROXY/$AZURITE_ACCOUNT" "$STEPOP" artifact stat az://test/tok/five.bin
is_eq "... two requests, the first refused" "$(azproxy_count True),$(azproxy_count "e['busy']")" 2,1
is_eq "... and two tokens fetched (the second forced)" "$(($(azure_auth_count "e.get('status')==200") - before))" 2
azproxy_reset
azproxy_busy 5 InvalidAuthenticationInfo 401
expect_rc 1 "a token refused again is not fetched a third time" \
    env STEPOP_AZURE_BLOB_ENDPOINT="$AZPROXY/$AZURITE_ACCOUNT" "$STEPOP" artifact stat az://test/tok/five.bin
is_eq "... two requests" "$(azproxy_count True)" 2
azproxy_busy 0

# Without a usable identity.
expect_rc 1 "a wrong client secret fails" env AZURE_CLIENT_SECRET=wrong-secret-value "$STEPOP" artifact stat az://test/tok/five.bin
err_has "no Azure token" "saying no token came"
check "the message holds no secret" sh -c "! grep -qF -e wrong-secret-value -e '$AZURE_FAKE_SECRET' '$T/err'"
done_testing
