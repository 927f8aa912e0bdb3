#!/usr/bin/env bash
# The Google credentials layer (cloud/google/auth.h) through build/tests/tools/google_token against
# tests/servers/google_auth_fake.py: every provider and their order, the project, the token cache
# and its refresh (also between the requests of one client), V4-style signing, what is refused
# and that no secret reaches a message. Cross-checks: Debian's python3-google-auth gets tokens
# from the same service_account and authorized_user files and from the same metadata server.
. "$(dirname "$0")/../lib.sh"
GT=$ROOT/build/tests/tools/google_token
[ -x "$GT" ] || skip_all "build/tests/tools/google_token is not built (make test builds it)"
command -v openssl >/dev/null || skip_all "openssl is missing"
/usr/bin/python3 -c 'import google.auth.jwt, google.oauth2.service_account, requests' 2>/dev/null ||
    skip_all "python3-google-auth or python3-requests is missing (make deps)"
start_google_auth_fake --project meta-project --email vm@meta-project.iam.gserviceaccount.com ||
    { not_ok "the fake starts"; done_testing; }
U=$GOOGLE_AUTH_FAKE_URL
SA=sa@key-project.iam.gserviceaccount.com
google_sa_key "$T/sa.json" "$SA" key-project || { not_ok "a service account key"; done_testing; }
count() { google_auth_count "$1"; }
# No message may hold a secret of the files below.
no_secret() { # DESC FILE
    local s
    for s in "BEGIN PRIVATE KEY" "MII" "refresh-SECRET" "client-SECRET" "subject-SECRET" "ya29." "eyJ"; do
        if grep -qF -- "$s" "$2"; then not_ok "$1 (it holds \"$s\")"; diag <"$2"; return; fi
    done
    ok "$1"
}

# ---- service_account --------------------------------------------------------------------
expect_rc 0 "service_account key via GOOGLE_APPLICATION_CREDENTIALS" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" token
out_has "provider=service account key length=" "names its provider"
check "the fake verified the assertion (google.auth.jwt: signature, iss, aud, scope, 1 h lifetime)" \
    test "$(count "e.get('kind') == 'service_account' and e.get('lifetime') == 3600 and e['status'] == 200")" = 1
expect_rc 0 "project from the key file" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" project
is_eq "it is project_id" "$(cat "$T/out")" key-project
expect_rc 0 "GOOGLE_CLOUD_PROJECT first" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" GOOGLE_CLOUD_PROJECT=env-p GCLOUD_PROJECT=old-p "$GT" project
is_eq "is taken" "$(cat "$T/out")" env-p
expect_rc 0 "then GCLOUD_PROJECT" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" GCLOUD_PROJECT=old-p "$GT" project
is_eq "is taken" "$(cat "$T/out")" old-p

# The token cache: three uses, one exchange; with expires_in inside the 5-minute window, one
# exchange per use.
n0=$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")
expect_rc 0 "three tokens from one process" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" token 3
is_eq "come from one exchange (cached)" "$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")" $((n0 + 1))
google_auth_setup config '{"expires_in": 200}'
n0=$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")
expect_rc 0 "three signed GETs with tokens that expire within 5 minutes" \
    env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" get "$U/_/whoami" 3
is_eq "each request got a fresh token (refreshed before use)" "$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")" $((n0 + 3))
is_eq "and the resource saw three different tokens" "$(grep -o '"serial": [0-9]*' "$T/out" | sort -u | wc -l)" 3
google_auth_setup config '{"expires_in": 3600}'
n0=$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")
expect_rc 0 "five signed GETs with an hour-long token" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" get "$U/_/whoami" 5
is_eq "use one exchange" "$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")" $((n0 + 1))

n0=$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")
expect_rc 0 "16 threads ask for a token at once" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" threads 16
is_eq "all get one" "$(cat "$T/out")" 16
is_eq "from one exchange (one cache behind a mutex)" "$(count "e['path'] == '/token' and e.get('kind') == 'service_account'")" $((n0 + 1))

# V4 signing with the key: verified by openssl against the public key.
expect_rc 0 "google_auth_sign_bytes with the service account key" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" sign "GOOG4-RSA-SHA256 test"
is_eq "names the key's email" "$(cut -d' ' -f2 "$T/out")" "$SA"
cut -d' ' -f1 "$T/out" | tr '_-' '/+' | awk '{ n = length($0) % 4; if (n) $0 = $0 substr("===", 1, 4 - n); print }' | openssl base64 -d -A >"$T/sig"
printf 'GOOG4-RSA-SHA256 test' >"$T/signed"
check "the signature verifies (RSASSA-PKCS1-v1_5 SHA-256)" openssl dgst -sha256 -verify "$T/sa.json.pub" -signature "$T/sig" "$T/signed"

# Cross-check: Google's Python library gets a token from the same file at the same endpoint.
cat >"$T/py_sa.py" <<'PY'
import sys, requests, google.auth.transport.requests as tr
from google.oauth2 import service_account
c = service_account.Credentials.from_service_account_file(sys.argv[1], scopes=['https://www.googleapis.com/auth/cloud-platform'])
c.refresh(tr.Request())
r = requests.get(sys.argv[2], headers={'Authorization': 'Bearer ' + c.token})
print(r.status_code, r.json()['kind'])
PY
check "python3-google-auth's service_account.Credentials gets a token from the same key file" \
    sh -c "/usr/bin/python3 '$T/py_sa.py' '$T/sa.json' '$U/_/whoami' | grep -qx '200 service_account'"

# A key the endpoint does not know (another key for the same email).
google_sa_key "$T/other.json" other@key-project.iam.gserviceaccount.com >/dev/null
/usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['private_key']=open(sys.argv[2]).read(); json.dump(d, open(sys.argv[3],'w'))" \
    "$T/sa.json" "$T/other.json.pem" "$T/wrong.json"
expect_rc 1 "an assertion signed by the wrong key is refused" env GOOGLE_APPLICATION_CREDENTIALS="$T/wrong.json" "$GT" token
err_has "HTTP 400: invalid_grant" "with the endpoint's reason"
no_secret "without the key or the assertion in the message" "$T/err"

# ---- authorized_user, gcloud's ADC file, and the order ----------------------------------
google_auth_setup user '{"client_id": "client-1.apps.googleusercontent.com", "client_secret": "client-SECRET", "refresh_token": "refresh-SECRET"}'
cat >"$T/user.json" <<EOF
{"type": "authorized_user", "client_id": "client-1.apps.googleusercontent.com", "client_secret": "client-SECRET",
 "refresh_token": "refresh-SECRET", "quota_project_id": "quota-p", "token_uri": "$U/token"}
EOF
expect_rc 0 "authorized_user via GOOGLE_APPLICATION_CREDENTIALS" env GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" "$GT" token
out_has "provider=authorized user" "names its provider"
check "through the refresh_token grant" test "$(count "e.get('grant') == 'refresh_token' and e['status'] == 200")" = 1
expect_rc 0 "its project" env GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" "$GT" project
is_eq "is quota_project_id" "$(cat "$T/out")" quota-p
sed 's/refresh-SECRET/refresh-SECRET-revoked/' "$T/user.json" >"$T/user-bad.json"
expect_rc 1 "a refresh token the endpoint refuses" env GOOGLE_APPLICATION_CREDENTIALS="$T/user-bad.json" "$GT" token
err_has "refresh_token grant" "says which exchange failed"
no_secret "without the refresh token or client secret" "$T/err"
cat >"$T/py_user.py" <<'PY'
import json, sys, requests, google.auth.transport.requests as tr
from google.oauth2 import credentials
d = json.load(open(sys.argv[1]))
c = credentials.Credentials(None, refresh_token=d['refresh_token'], token_uri=d['token_uri'], client_id=d['client_id'], client_secret=d['client_secret'])
c.refresh(tr.Request())
print(requests.get(sys.argv[2], headers={'Authorization': 'Bearer ' + c.token}).json()['kind'])
PY
expect_rc 0 "a signed request with an authorized_user file" env GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" "$GT" get "$U/_/whoami"
check "carries its quota_project_id in x-goog-user-project" test "$(count "e['path'] == '/_/whoami' and e.get('user_project') == 'quota-p'")" = 1
expect_rc 0 "with GOOGLE_CLOUD_QUOTA_PROJECT" env GOOGLE_CLOUD_QUOTA_PROJECT=env-quota GOOGLE_APPLICATION_CREDENTIALS="$T/user.json" "$GT" get "$U/_/whoami"
check "that one is sent" test "$(count "e['path'] == '/_/whoami' and e.get('user_project') == 'env-quota'")" = 1
check "a service_account key without quota_project_id sends none" \
    test "$(count "e['path'] == '/_/whoami' and e.get('kind') == 'service_account' and e.get('user_project')")" = 0
check "python3-google-auth's oauth2.credentials refreshes from the same authorized_user file" \
    sh -c "/usr/bin/python3 '$T/py_user.py' '$T/user.json' '$U/_/whoami' | grep -qx user"

cp "$T/user.json" "$CLOUDSDK_CONFIG/application_default_credentials.json"
expect_rc 0 "gcloud's ADC file under CLOUDSDK_CONFIG" "$GT" token
out_has "provider=gcloud ADC" "names its provider"
expect_rc 0 "GOOGLE_APPLICATION_CREDENTIALS comes before the ADC file" env GOOGLE_APPLICATION_CREDENTIALS="$T/sa.json" "$GT" token
out_has "provider=service account key" "the key file is used"
mkdir -p "$T/home/.config/gcloud"
cp "$T/user.json" "$T/home/.config/gcloud/application_default_credentials.json"
expect_rc 0 "without CLOUDSDK_CONFIG, ~/.config/gcloud" env -u CLOUDSDK_CONFIG HOME="$T/home" "$GT" token
out_has "provider=gcloud ADC" "is read"
echo '{"type": "authorized_user", "client_id": "x"' >"$CLOUDSDK_CONFIG/application_default_credentials.json"
expect_rc 1 "a broken ADC file ends the chain (the metadata server is not asked)" "$GT" token
err_has "gcloud ADC file: $CLOUDSDK_CONFIG/application_default_credentials.json: invalid JSON" "with the file and the syntax error's place"
err_has "kind: invalid" "as a configuration error"
rm "$CLOUDSDK_CONFIG/application_default_credentials.json"

# ---- the metadata server ----------------------------------------------------------------
expect_rc 0 "the metadata server when there is no file" "$GT" token
out_has "provider=metadata server" "names its provider"
check "it was asked with Metadata-Flavor: Google" test "$(count "e.get('kind') == 'metadata' and e['status'] == 200")" = 1
check "the fake refuses a request without the header" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$U/computeMetadata/v1/instance/service-accounts/default/token")" = 403
expect_rc 0 "the project from the metadata server" "$GT" project
is_eq "is its project-id" "$(cat "$T/out")" meta-project
cat >"$T/py_gce.py" <<'PY'
import sys, requests, google.auth.transport.requests as tr
from google.auth import compute_engine
c = compute_engine.Credentials()
c.refresh(tr.Request())
print(requests.get(sys.argv[1], headers={'Authorization': 'Bearer ' + c.token}).json()['kind'])
PY
check "python3-google-auth's compute_engine.Credentials gets a token from the same metadata server" \
    sh -c "GCE_METADATA_ROOT='$GCE_METADATA_HOST' /usr/bin/python3 '$T/py_gce.py' '$U/_/whoami' | grep -qx metadata"
dead=$(free_port)
start=$SECONDS
expect_rc 1 "no file and no metadata server" env GCE_METADATA_HOST=127.0.0.1:$dead "$GT" token
err_has "no Google credentials (GOOGLE_APPLICATION_CREDENTIALS is not set; no gcloud ADC file at $CLOUDSDK_CONFIG/application_default_credentials.json; metadata server http://127.0.0.1:$dead" "says what was tried"
check "and fails fast ($((SECONDS - start)) s)" test $((SECONDS - start)) -lt 15
expect_rc 1 "signing needs a service_account key" "$GT" sign x
err_has "signing needs a service_account key file, and the credentials come from the metadata server" "says so"

# ---- external_account (workload identity federation) -------------------------------------
google_auth_setup subject '{"subject_token": "subject-SECRET-1", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x"}'
AUD=//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x
printf 'subject-SECRET-1\n' >"$T/subject.txt"
printf '{"id_token": "subject-SECRET-1", "x": 1}' >"$T/subject.json"
ext() { # FILE CREDENTIAL_SOURCE [EXTRA_MEMBERS]
    cat >"$1" <<EOF
{"type": "external_account", "audience": "$AUD", "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
 "token_url": "$U/v1/token", "credential_source": $2 ${3:+, $3}}
EOF
}
ext "$T/ext-file.json" "{\"file\": \"$T/subject.txt\"}" '"quota_project_id": "ext-p"'
expect_rc 0 "external_account, subject token from a text file" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-file.json" "$GT" get "$U/_/whoami"
out_has '"kind": "sts"' "the STS token is used"
expect_rc 0 "its project" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-file.json" "$GT" project
is_eq "is quota_project_id" "$(cat "$T/out")" ext-p
ext "$T/ext-json.json" "{\"file\": \"$T/subject.json\", \"format\": {\"type\": \"json\", \"subject_token_field_name\": \"id_token\"}}"
expect_rc 0 "from a JSON file (format.subject_token_field_name)" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-json.json" "$GT" token
out_has "provider=external account" "names its provider"
ext "$T/ext-url.json" "{\"url\": \"$U/_/subject-token?format=json\", \"headers\": {\"X-Subject-Auth\": \"letmein\"}, \"format\": {\"type\": \"json\", \"subject_token_field_name\": \"id_token\"}}"
expect_rc 0 "from a URL with headers" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-url.json" "$GT" token
check "the URL was asked" test "$(count "e['path'] == '/_/subject-token' and e['status'] == 200")" = 1
ext "$T/ext-imp.json" "{\"file\": \"$T/subject.txt\"}" "\"service_account_impersonation_url\": \"$U/v1/projects/-/serviceAccounts/target@p.iam.gserviceaccount.com:generateAccessToken\", \"service_account_impersonation\": {\"token_lifetime_seconds\": 1800}"
expect_rc 0 "with service account impersonation" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-imp.json" "$GT" get "$U/_/whoami"
out_has '"kind": "impersonated", "serial": ' "the impersonated token is used"
out_has '"email": "target@p.iam.gserviceaccount.com"' "for the target account"
check "generateAccessToken got the STS token as its bearer" test "$(count "e.get('source_kind') == 'sts' and e['status'] == 200")" = 1
cat >"$T/exe.sh" <<EOF
#!/bin/sh
[ "\$GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE" = "$AUD" ] && [ "\$GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE" = 0 ] || exit 3
echo run >>"$T/exe.runs"
echo '{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "subject-SECRET-1", "expiration_time": 4102444800}'
EOF
chmod +x "$T/exe.sh"
ext "$T/ext-exe.json" "{\"executable\": {\"command\": \"$T/exe.sh --flag\", \"timeout_millis\": 10000}}"
expect_rc 1 "an executable source without GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-exe.json" "$GT" token
err_has "needs GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1" "is refused"
check "and not run" test ! -e "$T/exe.runs"
expect_rc 0 "with it, the executable's answer is exchanged" env GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 GOOGLE_APPLICATION_CREDENTIALS="$T/ext-exe.json" "$GT" token
check "it ran once" test "$(wc -l <"$T/exe.runs")" = 1
cat >"$T/exe-out.json" <<'EOF'
{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "subject-SECRET-1", "expiration_time": 4102444800}
EOF
ext "$T/ext-exe-cached.json" "{\"executable\": {\"command\": \"$T/exe.sh\", \"output_file\": \"$T/exe-out.json\"}}"
expect_rc 0 "an executable source whose output_file holds a valid answer" env GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 GOOGLE_APPLICATION_CREDENTIALS="$T/ext-exe-cached.json" "$GT" token
check "does not run it again" test "$(wc -l <"$T/exe.runs")" = 1
cat >"$T/exe-fail.sh" <<'EOF'
#!/bin/sh
echo '{"version": 1, "success": false, "code": "401", "message": "Caller not authorized."}'
EOF
chmod +x "$T/exe-fail.sh"
ext "$T/ext-exe-fail.json" "{\"executable\": {\"command\": \"$T/exe-fail.sh\"}}"
expect_rc 1 "an executable that reports failure" env GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 GOOGLE_APPLICATION_CREDENTIALS="$T/ext-exe-fail.json" "$GT" token
err_has "reported failure: 401: Caller not authorized." "gives its code and message"
google_auth_setup subject "{\"subject_token\": \"subject-SECRET-2\", \"audience\": \"$AUD-2\", \"client_id\": \"wf-client\", \"client_secret\": \"client-SECRET-wf\"}"
printf 'subject-SECRET-2' >"$T/subject2.txt"
cat >"$T/ext-client.json" <<EOF
{"type": "external_account", "audience": "$AUD-2", "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
 "token_url": "$U/v1/token", "client_id": "wf-client", "client_secret": "client-SECRET-wf", "credential_source": {"file": "$T/subject2.txt"}}
EOF
expect_rc 0 "an external_account with client credentials (HTTP Basic at STS)" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-client.json" "$GT" token
sed 's/client-SECRET-wf/client-SECRET-other/' "$T/ext-client.json" >"$T/ext-client-bad.json"
expect_rc 1 "wrong client credentials" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-client-bad.json" "$GT" token
err_has "HTTP 401: invalid_client" "are refused by STS"
no_secret "without the client secret" "$T/err"
printf 'subject-SECRET-wrong\n' >"$T/subject-bad.txt"
ext "$T/ext-bad.json" "{\"file\": \"$T/subject-bad.txt\"}"
expect_rc 1 "a subject token STS refuses" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-bad.json" "$GT" token
err_has "STS token exchange at $U/v1/token failed: HTTP 400: invalid_grant" "with STS's reason"
no_secret "without the subject token" "$T/err"
ext "$T/ext-aws.json" '{"environment_id": "aws1", "region_url": "http://169.254.169.254/latest/meta-data/placement/availability-zone", "url": "http://169.254.169.254/latest/meta-data/iam/security-credentials"}'
expect_rc 1 "an AWS-sourced external_account is refused" env GOOGLE_APPLICATION_CREDENTIALS="$T/ext-aws.json" "$GT" token
err_has "external_account credentials sourced from AWS" "says so"
err_has "kind: unsupported" "as unsupported"
echo '{"type": "external_account_authorized_user", "refresh_token": "refresh-SECRET"}' >"$T/eaau.json"
expect_rc 1 "external_account_authorized_user is refused" env GOOGLE_APPLICATION_CREDENTIALS="$T/eaau.json" "$GT" token
err_has 'credentials of type "external_account_authorized_user" are not supported' "says so"

# ---- impersonated_service_account ---------------------------------------------------------
/usr/bin/python3 - "$T/sa.json" "$T/imp.json" "$U" <<'PY'
import json, sys
json.dump({'type': 'impersonated_service_account', 'delegates': ['projects/-/serviceAccounts/mid@p.iam.gserviceaccount.com'],
           'service_account_impersonation_url': sys.argv[3] + '/v1/projects/-/serviceAccounts/final@p.iam.gserviceaccount.com:generateAccessToken',
           'source_credentials': json.load(open(sys.argv[1]))}, open(sys.argv[2], 'w'))
PY
expect_rc 0 "impersonated_service_account with a service_account source" env GOOGLE_APPLICATION_CREDENTIALS="$T/imp.json" "$GT" get "$U/_/whoami"
out_has '"email": "final@p.iam.gserviceaccount.com"' "the impersonated token is used"
check "generateAccessToken got the source's token and the delegates" \
    test "$(count "e.get('source_kind') == 'service_account' and e.get('delegates') == 1 and e['status'] == 200")" = 1
expect_rc 0 "its project comes from the source key" env GOOGLE_APPLICATION_CREDENTIALS="$T/imp.json" "$GT" project

# ---- files that cannot be used ------------------------------------------------------------
bad() { # DESC JSON MESSAGE KIND
    printf '%s' "$2" >"$T/bad.json"
    expect_rc 1 "$1" env GOOGLE_APPLICATION_CREDENTIALS="$T/bad.json" "$GT" token
    err_has "$3" "says: $3"
    err_has "kind: $4" "as $4"
    no_secret "without a secret" "$T/err"
}
bad "a key without private_key" "{\"type\": \"service_account\", \"client_email\": \"$SA\"}" 'needs a "private_key" string' invalid
bad "a private_key that is not PEM" "{\"type\": \"service_account\", \"client_email\": \"$SA\", \"private_key\": \"MIIsecret-not-pem\"}" "private_key is not a PEM private key" invalid
bad "no type" '{"client_email": "x"}' 'no "type"' invalid
bad "an unknown type" '{"type": "magic"}' 'unknown credentials type "magic"' invalid
bad "an authorized_user without refresh_token" '{"type": "authorized_user", "client_id": "a", "client_secret": "client-SECRET"}' 'needs a "refresh_token" string' invalid
expect_rc 1 "a file that does not exist" env GOOGLE_APPLICATION_CREDENTIALS="$T/nope.json" "$GT" token
err_has "GOOGLE_APPLICATION_CREDENTIALS: $T/nope.json: cannot read the credentials file" "names the variable and the file"
err_has "kind: invalid" "as a configuration error"

done_testing
