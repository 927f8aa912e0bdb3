#!/usr/bin/env bash
# The Azure identity chain (cloud/azure/) against tests/servers/azure_auth_fake.py, through the real
# code (build/tests/tools/azure_token): every source, its order, the cache and its refresh, the
# messages, and that no secret, assertion or token is printed. The fake checks what the client
# sends as Entra does; its own refusals are checked first, and npm @azure/identity gets tokens from
# the same fake (tests/servers/azure_identity_check.js).
. "$(dirname "$0")/../lib.sh"
TOOL=$ROOT/build/tests/tools/azure_token
[ -x "$TOOL" ] || skip_all "build/tests/tools/azure_token is not built (make build/tests/tools/azure_token)"
azure_fake_python >/dev/null || skip_all "python3-jwt or python3-cryptography is not installed (make deps)"
start_azure_auth_fake || { not_ok "the Entra fake starts"; done_testing; }
PY=$(azure_fake_python)
STORAGE=https://storage.azure.com/.default
ARM=https://management.azure.com/.default
TOKEN_URL=$AZURE_AUTH_FAKE_URL/$AZURE_FAKE_TENANT/oauth2/v2.0/token

# Every run starts from a clean environment: nothing of the chain set, IMDS on a closed loopback
# port (never the link-local address), and the fake az first on PATH, logged out.
unset AZURE_TENANT_ID AZURE_CLIENT_ID AZURE_CLIENT_SECRET AZURE_CLIENT_CERTIFICATE_PATH \
    AZURE_CLIENT_CERTIFICATE_PASSWORD AZURE_FEDERATED_TOKEN_FILE AZURE_AUTHORITY_HOST IDENTITY_ENDPOINT \
    IDENTITY_HEADER IMDS_ENDPOINT IDENTITY_SERVER_THUMBPRINT AZURE_POD_IDENTITY_AUTHORITY_HOST MSI_ENDPOINT
export PATH=$ROOT/tests/servers/az:$PATH FAKE_AZ=logged-out AZURE_POD_IDENTITY_AUTHORITY_HOST=http://127.0.0.1:1
# Everything the runs print goes to $T/all, which must never hold a secret or a token.
# tok CMD...: runs CMD (a wrapper below, then "$TOOL" ...) with stdout in $T/out, stderr in $T/err
tok() {
    "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    cat "$T/out" "$T/err" >>"$T/all"
    return $rc
}
xrc() { expect_rc "$@"; cat "$T/out" "$T/err" >>"$T/all"; }
sp() { env AZURE_AUTHORITY_HOST="$AZURE_AUTH_FAKE_URL" AZURE_TENANT_ID="$AZURE_FAKE_TENANT" "$@"; }
count() { azure_auth_count "$1"; }
fake_post() { curl -s -X POST "$AZURE_AUTH_FAKE_URL$1" >/dev/null; }

# ---- the fake refuses what Entra refuses (so that its acceptance below means something) ----
"$PY" - "$TOKEN_URL" "$AZURE_FAKE_CERT_CLIENT" "$T/azure/client.pem" "$T/azure/tls.key" >"$T/selfcheck" 2>&1 <<'PY'
import base64, hashlib, json, sys, time, urllib.error, urllib.parse, urllib.request, uuid
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
url, cid, pem, other_key = sys.argv[1:5]
data = open(pem, "rb").read()
cert = x509.load_pem_x509_certificate(data)
key = serialization.load_pem_private_key(data, None)
der = cert.public_bytes(serialization.Encoding.DER)
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
s256, s1 = b64(hashlib.sha256(der).digest()), b64(hashlib.sha1(der).digest())
def post(assertion):
    body = urllib.parse.urlencode({"client_id": cid, "scope": "https://storage.azure.com/.default",
        "grant_type": "client_credentials", "client_assertion": assertion,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}).encode()
    try:
        urllib.request.urlopen(url, body)
        return "200"
    except urllib.error.HTTPError as e:
        return "%d %s" % (e.code, json.load(e)["error_description"].split("\r")[0])
def make(alg="PS256", hdr=None, aud=url, iss=cid, sub=cid, jti=None, life=600, signer=key):
    now = int(time.time())
    claims = {"aud": aud, "iss": iss, "sub": sub, "jti": jti or str(uuid.uuid4()), "nbf": now, "iat": now,
              "exp": now + life}
    return jwt.encode(claims, signer, algorithm=alg, headers=hdr if hdr is not None else {"x5t#S256": s256})
other = serialization.load_pem_private_key(open(other_key, "rb").read(), None)
fixed = str(uuid.uuid4())
cases = [
    ("PS256 with x5t#S256", make()),
    ("RS256 with x5t#S256", make(alg="RS256")),
    ("RS256 with x5t (SHA-1, older MSAL)", make(alg="RS256", hdr={"x5t": s1})),
    ("a jti once", make(jti=fixed)),
    ("the same jti again", make(jti=fixed)),
    ("another audience", make(aud="https://login.microsoftonline.com/x/oauth2/v2.0/token")),
    ("iss not the client", make(iss="someone-else")),
    ("sub not the client", make(sub="someone-else")),
    ("a thumbprint of no registered certificate", make(hdr={"x5t#S256": b64(b"x" * 32)})),
    ("signed by another key", make(signer=other)),
    ("expired", make(life=-120)),
    ("living two hours", make(life=7200)),
    ("HS256", jwt.encode({"aud": url, "iss": cid, "sub": cid}, "k", algorithm="HS256",
                         headers={"x5t#S256": s256})),
]
for name, a in cases:
    print("%s: %s" % (name, post(a)))
PY
sc() { if grep -qF -- "$1: $2" "$T/selfcheck"; then ok "fake: $1 -> $2"; else not_ok "fake: $1 -> $2"; diag <"$T/selfcheck"; fi; }
sc "PS256 with x5t#S256" 200
sc "RS256 with x5t#S256" 200
sc "RS256 with x5t (SHA-1, older MSAL)" 200
sc "a jti once" 200
sc "the same jti again" "401 AADSTS700025"
sc "another audience" "401 AADSTS700212"
sc "iss not the client" "401 AADSTS700021"
sc "sub not the client" "401 AADSTS700021"
sc "a thumbprint of no registered certificate" "401 AADSTS700027"
sc "signed by another key" "401 AADSTS700027: the assertion failed verification"
sc "expired" "400 AADSTS700024"
sc "living two hours" "400 AADSTS700025"
sc "HS256" "401 AADSTS5002738"
check "fake: IMDS without Metadata: true is refused" \
    sh -c "curl -s '$AZURE_AUTH_FAKE_URL/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x' | grep -q 'metadata header'"
check "fake: App Service without X-IDENTITY-HEADER is refused" \
    sh -c "curl -s '$AZURE_AUTH_FAKE_URL/msi/token?api-version=2019-08-01&resource=x' | grep -q X-IDENTITY-HEADER"

# ---- environment: client secret ----
sec() { sp AZURE_CLIENT_ID="$AZURE_FAKE_SECRET_CLIENT" AZURE_CLIENT_SECRET="$AZURE_FAKE_SECRET" "$@"; }
before=$(count "e['route']=='token'")
if tok sec "$TOOL" --times 3 "$STORAGE" "$AZURE_AUTH_FAKE_URL/_/whoami"; then ok "client secret: a token"; else not_ok "client secret: a token"; diag <"$T/err"; fi
out_has "provider=environment (client secret)" "from the environment source"
out_has "\"aud\": \"https://storage.azure.com\"" "azure_auth_sign sent it: the fake verified it, audience storage"
out_has "\"appid\": \"$AZURE_FAKE_SECRET_CLIENT\"" "issued to the client"
is_eq "three asks, one token request (the cache)" "$(($(count "e['route']=='token'") - before))" 1
check "the request carried the secret" test "$(count "e.get('how')=='secret' and e['status']==200")" -ge 1
if tok sec "$TOOL" "$ARM"; then ok "a second scope"; else not_ok "a second scope"; diag <"$T/err"; fi
before=$(count "e['route']=='token'")
tok sec "$TOOL" --threads 16 "https://vault.azure.net/.default" || not_ok "16 threads"
out_has "threads=16 ok=16" "16 threads asking at once all get a token"
is_eq "from one token request" "$(($(count "e['route']=='token'") - before))" 1

fake_post "/_/lifetime?s=30"
before=$(count "e['route']=='token'")
tok sec "$TOOL" --times 3 "$STORAGE" || not_ok "short-lived tokens"
is_eq "a token with less than the refresh window left is asked for again each time" \
    "$(($(count "e['route']=='token'") - before))" 3
exp=$(sed -n 's/.*expires_in=\([0-9-]*\).*/\1/p' "$T/out" | tail -1)
check "expires_in is taken from the answer (30 s, less the time since)" test "${exp:-0}" -gt 0 -a "${exp:-0}" -le 30
fake_post "/_/lifetime?s=3600"

fake_post "/_/fail?n=1&status=503"
if tok sec "$TOOL" "$STORAGE"; then ok "a 503 from the token endpoint is retried"; else not_ok "a 503 from the token endpoint is retried"; diag <"$T/err"; fi

fake_post "/_/lifetime?s=3600"
before=$(count "e['route']=='imds'")
xrc 1 "a wrong client secret" sp AZURE_POD_IDENTITY_AUTHORITY_HOST="$AZURE_AUTH_FAKE_URL" \
    AZURE_CLIENT_ID="$AZURE_FAKE_SECRET_CLIENT" AZURE_CLIENT_SECRET="wrong-$AZURE_FAKE_SECRET" "$TOOL" "$STORAGE"
err_has "AADSTS7000215: Invalid client secret provided." "says Entra's reason"
err_has "invalid_client" "and its error code"
is_eq "and ends the chain (managed identity not asked)" "$(count "e['route']=='imds'")" "$before"
check "and does not print the secret" sh -c "! grep -qF -- '$AZURE_FAKE_SECRET' '$T/err'"
xrc 1 "a secret without AZURE_TENANT_ID" env AZURE_CLIENT_ID=x AZURE_CLIENT_SECRET=y "$TOOL" "$STORAGE"
err_has "environment: AZURE_CLIENT_SECRET is set but AZURE_TENANT_ID is not set" "says what is missing"
xrc 1 "AZURE_AUTHORITY_HOST over http to another machine" sec AZURE_AUTHORITY_HOST=http://login.example.invalid \
    "$TOOL" "$STORAGE"
err_has "must use https (http only to this machine)" "is refused before anything is sent"
xrc 1 "a tenant with a slash" sec AZURE_TENANT_ID="a/b" "$TOOL" "$STORAGE"
err_has "is not a tenant id or domain name" "is refused"

# ---- environment: certificate (PEM, PFX) ----
crt() { sp AZURE_CLIENT_ID="$AZURE_FAKE_CERT_CLIENT" "$@"; }
before=$(count "e.get('how')=='certificate:PS256:x5t#S256' and e['status']==200")
if tok crt AZURE_CLIENT_CERTIFICATE_PATH="$T/azure/client.pem" "$TOOL" --times 2 --force "$ARM" "$AZURE_AUTH_FAKE_URL/_/whoami"; then
    ok "certificate (PEM): a token"
else not_ok "certificate (PEM): a token"; diag <"$T/err"; fi
out_has "provider=environment (certificate)" "from the environment source"
out_has "\"aud\": \"https://management.azure.com\"" "audience ARM"
is_eq "PS256 assertions with x5t#S256, a fresh jti each (the fake refuses a replay)" \
    "$(($(count "e.get('how')=='certificate:PS256:x5t#S256' and e['status']==200") - before))" 2
if tok crt AZURE_CLIENT_CERTIFICATE_PATH="$T/azure/client.pfx" AZURE_CLIENT_CERTIFICATE_PASSWORD="$AZURE_FAKE_PFX_PASSWORD" \
    "$TOOL" "$ARM"; then ok "certificate (PFX with password): a token"; else not_ok "certificate (PFX with password): a token"; diag <"$T/err"; fi
xrc 1 "a PFX with the wrong password" crt AZURE_CLIENT_CERTIFICATE_PATH="$T/azure/client.pfx" \
    AZURE_CLIENT_CERTIFICATE_PASSWORD="not-$AZURE_FAKE_PFX_PASSWORD" "$TOOL" "$ARM"
err_has "the PFX file's password is not AZURE_CLIENT_CERTIFICATE_PASSWORD" "says so"
check "without printing the password" sh -c "! grep -qF -- '$AZURE_FAKE_PFX_PASSWORD' '$T/err'"
xrc 1 "a certificate the client did not register" crt AZURE_CLIENT_CERTIFICATE_PATH="$T/azure/tls.crt" "$TOOL" "$ARM"
err_has "holds no private key" "a file without its key is refused first"
cat "$T/azure/tls.key" "$T/azure/tls.crt" >"$T/other.pem"
xrc 1 "an unregistered certificate" crt AZURE_CLIENT_CERTIFICATE_PATH="$T/other.pem" "$TOOL" "$ARM"
err_has "AADSTS700027" "is refused by the fake, and the message says why"
xrc 1 "a missing certificate file" crt AZURE_CLIENT_CERTIFICATE_PATH="$T/none.pem" "$TOOL" "$ARM"
err_has "AZURE_CLIENT_CERTIFICATE_PATH: cannot read $T/none.pem" "names the file"

# ---- workload identity ----
azure_federated_token "$T/fed"
wl() { sp AZURE_CLIENT_ID="$AZURE_FAKE_FED_CLIENT" AZURE_FEDERATED_TOKEN_FILE="$T/fed" "$@"; }
if tok wl "$TOOL" "$ARM" "$AZURE_AUTH_FAKE_URL/_/whoami"; then ok "workload identity: a token"; else not_ok "workload identity: a token"; diag <"$T/err"; fi
out_has "provider=workload identity" "from the workload identity source"
out_has "\"appid\": \"$AZURE_FAKE_FED_CLIENT\"" "for the federated client"
# The file is read again at each refresh: a token of another subject written between two asks
# makes the second one fail.
cp "$T/fed" "$T/fed.good"
azure_federated_token "$T/fed.other" api://AzureADTokenExchange system:serviceaccount:ml:intruder
xrc 1 "the federated token file is read again at each refresh" wl "$TOOL" --times 2 --force \
    --between "cp '$T/fed.other' '$T/fed'" "$ARM"
out_has "provider=workload identity" "(the first ask succeeded)"
err_has "AADSTS70021" "(the second sent the new file, which the fake refused)"
cp "$T/fed.good" "$T/fed"
azure_federated_token "$T/fed.aud" api://SomethingElse
xrc 1 "a federated token for another audience" wl AZURE_FEDERATED_TOKEN_FILE="$T/fed.aud" "$TOOL" "$ARM"
err_has "AADSTS700212" "is refused"
xrc 1 "an unreadable federated token file" wl AZURE_FEDERATED_TOKEN_FILE="$T/none" "$TOOL" "$ARM"
err_has "cannot read AZURE_FEDERATED_TOKEN_FILE" "says so"

# ---- managed identity ----
im() { env AZURE_POD_IDENTITY_AUTHORITY_HOST="$AZURE_AUTH_FAKE_URL" "$@"; }
if tok im "$TOOL" "$ARM" "$AZURE_AUTH_FAKE_URL/_/whoami"; then ok "IMDS (system-assigned): a token"; else not_ok "IMDS (system-assigned): a token"; diag <"$T/err"; fi
out_has "provider=managed identity" "from the managed identity source"
out_has "\"appid\": \"$AZURE_FAKE_MSI_SYSTEM\"" "the system-assigned identity"
if tok im AZURE_CLIENT_ID="$AZURE_FAKE_MSI_USER" "$TOOL" "$STORAGE" "$AZURE_AUTH_FAKE_URL/_/whoami"; then
    ok "IMDS (user-assigned by AZURE_CLIENT_ID): a token"
else not_ok "IMDS (user-assigned by AZURE_CLIENT_ID): a token"; diag <"$T/err"; fi
out_has "\"appid\": \"$AZURE_FAKE_MSI_USER\"" "the user-assigned identity"
check "IMDS was asked with client_id" test "$(count "e['route']=='imds' and e['client_id']=='$AZURE_FAKE_MSI_USER' and e['status']==200")" = 1
xrc 1 "IMDS answering 400 (no such identity) leaves the source unavailable" \
    im AZURE_CLIENT_ID=0a1b2c3d-9999-4999-8999-000000000009 "$TOOL" "$ARM"
err_has "managed identity: IMDS: " "the message has IMDS's answer"
err_has "Identity not found" "(its words)"
err_has "Azure CLI: az account get-access-token exited with status 1" "and the chain went on to the CLI"
app() { env IDENTITY_ENDPOINT="$AZURE_AUTH_FAKE_URL/msi/token" IDENTITY_HEADER="$AZURE_FAKE_APP_HEADER" "$@"; }
if tok app AZURE_CLIENT_ID="$AZURE_FAKE_MSI_USER" "$TOOL" "$ARM" "$AZURE_AUTH_FAKE_URL/_/whoami"; then
    ok "App Service (IDENTITY_ENDPOINT, IDENTITY_HEADER): a token"
else not_ok "App Service (IDENTITY_ENDPOINT, IDENTITY_HEADER): a token"; diag <"$T/err"; fi
out_has "\"appid\": \"$AZURE_FAKE_MSI_USER\"" "for the user-assigned identity"
xrc 1 "App Service with the wrong IDENTITY_HEADER" app IDENTITY_HEADER=wrong "$TOOL" "$ARM"
err_has "X-IDENTITY-HEADER is missing or wrong" "gives the endpoint's answer"
check "and ends the chain (a configured source failed)" sh -c "! grep -q 'Azure CLI' '$T/err'"

# ---- Azure CLI ----
export FAKE_AZ_ARGS=$T/az.args
if tok env FAKE_AZ=ok "$TOOL" "$STORAGE" "$AZURE_AUTH_FAKE_URL/_/whoami"; then ok "Azure CLI: a token"; else not_ok "Azure CLI: a token"; diag <"$T/err"; fi
out_has "provider=Azure CLI" "from the CLI source"
out_has "\"aud\": \"https://storage.azure.com\"" "for the scope's resource"
is_eq "az was run as AzureCliCredential runs it" "$(tail -1 "$T/az.args")" \
    "account get-access-token --scope $STORAGE --output json"
if tok env FAKE_AZ=old "$TOOL" "$ARM"; then ok "an older az (expiresOn only, local time)"; else not_ok "an older az (expiresOn only, local time)"; diag <"$T/err"; fi
exp=$(sed -n 's/.*expires_in=\([0-9-]*\).*/\1/p' "$T/out")
check "its local expiry is read right (an hour, less the time since)" test "${exp:-0}" -gt 3000 -a "${exp:-0}" -le 3600
unset FAKE_AZ_ARGS

# ---- nothing at all ----
xrc 1 "no source gives a token" "$TOOL" "$ARM"
err_has "no Azure token for $ARM (tried environment: AZURE_CLIENT_SECRET and AZURE_CLIENT_CERTIFICATE_PATH are not set; workload identity: AZURE_FEDERATED_TOKEN_FILE is not set; managed identity: IMDS: " \
    "the message lists each source and why"
err_has "Azure CLI: az account get-access-token exited with status 1 (signed in with 'az login'?)" "down to the CLI"

# ---- Azurite (--oauth basic: audience, issuer, lifetime; not the signature) takes the tokens ----
AZURITE=$ROOT/tests/servers/node_modules/azurite/dist/src/blob/main.js
if ! command -v node >/dev/null || [ ! -f "$AZURITE" ]; then
    ok "Azurite accepts a storage token # SKIP node or azurite is missing"
    ok "Azurite refuses an ARM token # SKIP node or azurite is missing"
else
    aport=$(free_port)
    mkdir -p "$T/azurite"
    node "$AZURITE" --blobHost 127.0.0.1 --blobPort "$aport" --oauth basic --cert "$T/azure/tls.crt" \
        --key "$T/azure/tls.key" --location "$T/azurite" --silent --disableTelemetry >"$T/azurite.log" 2>&1 &
    on_exit "kill $!"
    # Azurite takes a while to start on a loaded machine: up to 60 s.
    for _ in $(seq 600); do curl -sk -o /dev/null --max-time 1 "https://127.0.0.1:$aport/" && break; sleep 0.1; done
    list="https://127.0.0.1:$aport/devstoreaccount1?comp=list"
    if tok im STEPOP_CA_BUNDLE="$AZURE_AUTH_FAKE_CA" "$TOOL" --header "x-ms-version: 2021-08-06" "$STORAGE" "$list" &&
        grep -q "<EnumerationResults" "$T/out"; then
        ok "Azurite accepts a storage token (List Containers over https, bearer)"
    else not_ok "Azurite accepts a storage token"; diag <"$T/err"; fi
    xrc 1 "Azurite refuses an ARM token" im STEPOP_CA_BUNDLE="$AZURE_AUTH_FAKE_CA" "$TOOL" \
        --header "x-ms-version: 2021-08-06" "$ARM" "$list"
    err_has "AuthenticationFailed" "(AuthenticationFailed: the audience is checked)"
fi

# ---- nothing secret was ever printed ----
check "(what the runs printed was collected)" grep -q "provider=Azure CLI" "$T/all"
check "no secret, password or token in anything printed" sh -c "! grep -qF -e '$AZURE_FAKE_SECRET' -e '$AZURE_FAKE_PFX_PASSWORD' -e eyJ '$T/all'"
check "nor in the fake's log" sh -c "! curl -s '$AZURE_AUTH_FAKE_URL/_/log' | grep -qF -e '$AZURE_FAKE_SECRET' -e eyJ"

# ---- the official client against the same fake ----
if ! command -v node >/dev/null || [ ! -d "$ROOT/tests/servers/node_modules/@azure/identity" ]; then
    ok "npm @azure/identity cross-check # SKIP node or @azure/identity is missing"
else
    nodecheck() { (cd "$ROOT/tests/servers" && env NODE_EXTRA_CA_CERTS="$AZURE_AUTH_FAKE_CA" AZURE_TENANT_ID="$AZURE_FAKE_TENANT" \
        "$@" node azure_identity_check.js "${NODE_MODE}" "$STORAGE") >"$T/out" 2>"$T/err"; }
    before=$(count "e.get('scheme')=='https' and e['status']==200")
    NODE_MODE=secret; if nodecheck AZURE_CLIENT_ID="$AZURE_FAKE_SECRET_CLIENT" AZURE_CLIENT_SECRET="$AZURE_FAKE_SECRET"; then
        ok "@azure/identity ClientSecretCredential gets a token from the fake"; else not_ok "@azure/identity ClientSecretCredential"; diag <"$T/err"; fi
    NODE_MODE=secret; if ! nodecheck AZURE_CLIENT_ID="$AZURE_FAKE_SECRET_CLIENT" AZURE_CLIENT_SECRET=wrong; then
        ok "... and is refused with a wrong secret"; else not_ok "... and is refused with a wrong secret"; fi
    NODE_MODE=certificate; if nodecheck AZURE_CLIENT_ID="$AZURE_FAKE_CERT_CLIENT" AZURE_CLIENT_CERTIFICATE_PATH="$T/azure/client.pem"; then
        ok "@azure/identity ClientCertificateCredential gets a token from the fake"; else not_ok "@azure/identity ClientCertificateCredential"; diag <"$T/err"; fi
    check "msal-node signed PS256 with x5t#S256, as stepop does" \
        test "$(count "e.get('scheme')=='https' and e.get('how')=='certificate:PS256:x5t#S256'")" -ge 1
    NODE_MODE=workload; if nodecheck AZURE_CLIENT_ID="$AZURE_FAKE_FED_CLIENT" AZURE_FEDERATED_TOKEN_FILE="$T/fed"; then
        ok "@azure/identity WorkloadIdentityCredential gets a token from the fake"; else not_ok "@azure/identity WorkloadIdentityCredential"; diag <"$T/err"; fi
    is_eq "three tokens issued over https" "$(($(count "e.get('scheme')=='https' and e['status']==200") - before))" 3
fi
done_testing
