#!/usr/bin/env bash
# The AWS credential chain against loopback fakes (tests/servers/awsfake.py: STS, the container
# endpoint, IMDSv2), the shared files with profiles, its order, its error message, and the
# refresh of temporary credentials in the middle of a transfer. Every S3 request goes through
# the verifying proxy, which only accepts the keys the fakes handed out, until they expire.
. "$(dirname "$0")/../lib.sh"
command -v node >/dev/null || skip_all "node is not installed"
botocore_python >/dev/null || skip_all "python3-botocore is not installed (make deps)"
[ -f "$ROOT/tests/servers/node_modules/s3rver/bin/s3rver.js" ] || skip_all "s3rver is not installed (make deps)"
start_s3 || { not_ok "s3rver and the verifying proxy start"; done_testing; }
printf 'hello\n' >"$T/hello"
"$STEPOP" artifact put "$T/hello" s3://test/hello >/dev/null 2>&1 || not_ok "seed object"
used_keys() { s3_log | python3 -c "import json,sys; print(' '.join(sorted({e.get('akid') or '-' for e in json.load(sys.stdin)})))"; }

# Environment keys, with a session token.
printf '{"akid": "ASIAENVSESSION000001", "secret": "env/Secret", "token": "env-token", "expires": null}\n' >>"$S3_KEYS"
s3_reset
expect_rc 0 "environment keys with AWS_SESSION_TOKEN" env AWS_ACCESS_KEY_ID=ASIAENVSESSION000001 \
    AWS_SECRET_ACCESS_KEY=env/Secret AWS_SESSION_TOKEN=env-token "$STEPOP" artifact stat s3://test/hello
expect_rc 1 "only half of the environment keys is an error" env -u AWS_SECRET_ACCESS_KEY "$STEPOP" artifact stat s3://test/hello
err_has "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not" "that says which is missing"

# Web identity through STS.
start_awsfake --web-token "eyJ.web.token" --role-arn arn:aws:iam::123456789012:role/stepop
printf 'eyJ.web.token\n' >"$T/web-token"
webid() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_WEB_IDENTITY_TOKEN_FILE="$T/web-token" \
    AWS_ROLE_ARN=arn:aws:iam::123456789012:role/stepop AWS_ENDPOINT_URL_STS="$AWSFAKE_URL" "$@"; }
s3_reset
expect_rc 0 "web identity (AssumeRoleWithWebIdentity)" webid AWS_ROLE_SESSION_NAME=my-session \
    "$STEPOP" artifact get s3://test/hello "$T/w"
check "STS was asked for the role, unsigned, with the session name" \
    test "$(awsfake_count "e.get('action')=='AssumeRoleWithWebIdentity' and e['session']=='my-session' and not e['signed']")" = 1
check "and S3 saw the key STS issued" sh -c "curl -s $S3_URL/_/log | grep -q ASIAWEBI"
printf 'some.other.token\n' >"$T/bad-token"
expect_rc 1 "a token STS refuses" webid AWS_WEB_IDENTITY_TOKEN_FILE="$T/bad-token" "$STEPOP" artifact stat s3://test/hello
err_has "InvalidIdentityToken" "gives STS's code"
err_has "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set" "and lists the providers tried before"
check "without printing the token" sh -c "! grep -q some.other.token '$T/err'"
expect_rc 1 "a role ARN without a token file" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_ROLE_ARN=arn:x \
    "$STEPOP" artifact stat s3://test/hello
err_has "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not" "is a configuration error"

# Shared files, profiles and region.
cat >"$T/aws-credentials" <<EOF
# a comment
[default]
aws_access_key_id = $S3_AKID
aws_secret_access_key = $S3_SECRET

[dev]
aws_access_key_id=ASIADEVPROFILE000001
aws_secret_access_key = dev/Secret ; an inline comment
aws_session_token = dev-token
EOF
cat >"$T/aws-config" <<EOF
[default]
region = us-east-1
[profile  confonly]
aws_access_key_id = $S3_AKID
aws_secret_access_key = $S3_SECRET
region = eu-west-3
s3 =
  addressing_style = virtual
[profile assume]
role_arn = arn:aws:iam::123456789012:role/x
source_profile = default
EOF
printf '{"akid": "ASIADEVPROFILE000001", "secret": "dev/Secret", "token": "dev-token", "expires": null}\n' >>"$S3_KEYS"
files() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_SHARED_CREDENTIALS_FILE="$T/aws-credentials" \
    AWS_CONFIG_FILE="$T/aws-config" "$@"; }
s3_reset
expect_rc 0 "the default profile of the credentials file" files "$STEPOP" artifact stat s3://test/hello
s3_reset
expect_rc 0 "AWS_PROFILE=dev, with a session token and an inline comment" files AWS_PROFILE=dev "$STEPOP" artifact stat s3://test/hello
check "S3 saw the dev profile's key" test "$(used_keys)" = ASIADEVPROFILE000001
expect_rc 0 "keys in the config file's [profile x]" files AWS_PROFILE=confonly env -u AWS_REGION \
    "$STEPOP" artifact presign s3://test/hello
out_has "%2Feu-west-3%2Fs3%2F" "the region comes from the profile"
expect_rc 0 "AWS_REGION wins over the profile's region" files AWS_PROFILE=confonly AWS_REGION=ap-south-1 \
    "$STEPOP" artifact presign s3://test/hello
out_has "%2Fap-south-1%2Fs3%2F" "AWS_REGION is used"
expect_rc 0 "AWS_DEFAULT_REGION when AWS_REGION is unset" files env -u AWS_REGION AWS_DEFAULT_REGION=sa-east-1 \
    "$STEPOP" artifact presign s3://test/hello
out_has "%2Fsa-east-1%2Fs3%2F" "AWS_DEFAULT_REGION is used"
expect_rc 0 "us-east-1 when nothing says otherwise" env -u AWS_REGION AWS_CONFIG_FILE=/nonexistent "$STEPOP" artifact presign s3://test/hello
out_has "%2Fus-east-1%2Fs3%2F" "us-east-1 is the default"
expect_rc 1 "a named profile that does not exist" files AWS_PROFILE=nope "$STEPOP" artifact stat s3://test/hello
err_has 'no keys for profile "nope"' "says so"
expect_rc 1 "an assume-role profile is refused clearly" files AWS_PROFILE=assume "$STEPOP" artifact stat s3://test/hello
err_has "role_arn" "and says what is not supported"
check "no secret from the files is printed" sh -c "! grep -q -e dev/Secret -e Test+Secret '$T/err'"

# The container endpoint (ECS task role, EKS Pod Identity).
start_awsfake --ecs-token "Bearer pod-identity-token"
printf 'Bearer pod-identity-token\n' >"$T/ecs-token"
s3_reset
expect_rc 0 "container credentials with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" env -u AWS_ACCESS_KEY_ID \
    -u AWS_SECRET_ACCESS_KEY AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWSFAKE_URL/ecs/creds" \
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE="$T/ecs-token" "$STEPOP" artifact get s3://test/hello "$T/e"
check "the endpoint got the token" test "$(awsfake_count "e.get('authorization')=='match'")" = 1
expect_rc 0 "and with AWS_CONTAINER_AUTHORIZATION_TOKEN" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWSFAKE_URL/ecs/creds" AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer pod-identity-token" \
    "$STEPOP" artifact stat s3://test/hello
expect_rc 1 "a wrong token is refused" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWSFAKE_URL/ecs/creds" AWS_CONTAINER_AUTHORIZATION_TOKEN="Bearer wrong" \
    "$STEPOP" artifact stat s3://test/hello
err_has "container endpoint" "and the message names the provider"
check "without printing the token" sh -c "! grep -q 'Bearer wrong' '$T/err'"
expect_rc 1 "a plain-HTTP full URI to another host is refused" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_CONTAINER_CREDENTIALS_FULL_URI=http://credentials.example.invalid/creds "$STEPOP" artifact stat s3://test/hello
err_has "must use https" "and says why"

# EC2 instance metadata, IMDSv2.
start_awsfake --imds-role stepop-node-role
imds() { env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_EC2_METADATA_DISABLED \
    AWS_EC2_METADATA_SERVICE_ENDPOINT="$AWSFAKE_URL" "$@"; }
s3_reset
expect_rc 0 "instance metadata (IMDSv2)" imds "$STEPOP" artifact get s3://test/hello "$T/i"
check "a session token was asked for first, with a TTL" test "$(awsfake_count "e['method']=='PUT' and e.get('ttl')=='21600'")" = 1
check "then the role and its credentials, with the token" \
    test "$(awsfake_count "e['method']=='GET' and e['path'].startswith('/latest/meta-data/') and e.get('token')")" = 2
check "and no request went without a token" test "$(awsfake_count "e['method']=='GET' and not e.get('token')")" = 0
expect_rc 1 "AWS_EC2_METADATA_DISABLED turns it off" imds AWS_EC2_METADATA_DISABLED=true "$STEPOP" artifact stat s3://test/hello
err_has "AWS_EC2_METADATA_DISABLED is set" "and the message says so"
start_awsfake
expect_rc 1 "an instance without a role" imds "$STEPOP" artifact stat s3://test/hello
err_has "no IAM role is attached" "says so"

# The order of the chain, and the message when nothing is configured.
s3_reset
expect_rc 0 "environment keys come before a profile" files AWS_PROFILE=dev AWS_ACCESS_KEY_ID=$S3_AKID \
    AWS_SECRET_ACCESS_KEY=$S3_SECRET "$STEPOP" artifact stat s3://test/hello
check "the environment's key was used" test "$(used_keys)" = "$S3_AKID"
start_awsfake --web-token "eyJ.web.token" --role-arn arn:aws:iam::123456789012:role/stepop
s3_reset
expect_rc 0 "web identity comes before the shared files" webid AWS_SHARED_CREDENTIALS_FILE="$T/aws-credentials" \
    AWS_PROFILE=dev "$STEPOP" artifact stat s3://test/hello
check "STS's key was used" sh -c "curl -s $S3_URL/_/log | grep -q ASIAWEBI"
expect_rc 1 "no credentials anywhere" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY HOME="$T/nohome" \
    AWS_SHARED_CREDENTIALS_FILE="$T/none" AWS_CONFIG_FILE="$T/none" "$STEPOP" artifact stat s3://test/hello
for p in "environment:" "web identity:" "shared files:" "container endpoint:" "EC2 instance metadata:"; do
    err_has "$p" "the message lists the $p provider"
done

# Temporary credentials refreshed during a transfer: the container endpoint advertises 303 s
# (so they are due for refresh after 3 s) while the proxy stops accepting each key after 6 s.
# Eight parts of 5 MiB, two at a time, each answered after 1.5 s: about 6 s of transfer.
head -c $((40 * 1048576)) /dev/urandom >"$T/forty"
start_awsfake --lifetime 303 --real-lifetime 6
s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=", "action": "delay", "seconds": 1.5, "count": 8}]'
start=$SECONDS
expect_rc 0 "a transfer outlives its first credentials" env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
    AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWSFAKE_URL/ecs/creds" STEPOP_S3_PART_SIZE=5MiB STEPOP_S3_CONCURRENCY=2 \
    "$STEPOP" artifact put "$T/forty" s3://test/refreshed --json
echo "# transfer took $((SECONDS - start)) s"
check "the object is intact" cmp "$T/forty" "$(s3_object_file test refreshed)"
check "credentials were fetched again during it" test "$(awsfake_count "e['path']=='/ecs/creds'")" -ge 2
check "several keys signed its requests" test "$(s3_log | grep -o 'ASIAECSX[0-9A-F]*' | sort -u | wc -l)" -ge 2
check "before any of them expired" test "$(s3_count "e.get('error')=='ExpiredToken'")" = 0
# Credentials that expire before they say (a revoked session): the server's ExpiredToken makes
# stepop ask again at once, and the request is retried.
start_awsfake --lifetime 3600 --real-lifetime 2
s3_reset
s3_faults '[{"method": "PUT", "query": "partNumber=", "action": "delay", "seconds": 1.5, "count": 8}]'
expect_rc 0 "ExpiredToken before the advertised expiry: refreshed and retried" env -u AWS_ACCESS_KEY_ID \
    -u AWS_SECRET_ACCESS_KEY AWS_CONTAINER_CREDENTIALS_FULL_URI="$AWSFAKE_URL/ecs/creds" STEPOP_S3_PART_SIZE=5MiB \
    STEPOP_S3_CONCURRENCY=2 "$STEPOP" artifact put "$T/forty" s3://test/refreshed2
check "the object is intact" cmp "$T/forty" "$(s3_object_file test refreshed2)"
check "the server did answer ExpiredToken" test "$(s3_count "e.get('error')=='ExpiredToken'")" -ge 1
check "no multipart upload is left open" test "$(s3_uploads)" = "[]"
done_testing
