#!/usr/bin/env bash
# stepop doctor against cheap local beds: the file store and the local flavor, an http store with
# nothing listening, S3 (s3rver behind the verifying proxy) with good and wrong keys and STS
# GetCallerIdentity on awsfake, the sagemaker, vertex and azureml flavors on their fakes, the gs
# store on the GCS fake, the az store on Azurite, the --json shape, and no secret in any output.
# Exact lines are compared after the probe object's name (pid, time) is normalised.
. "$(dirname "$0")/../lib.sh"

export XDG_CONFIG_HOME=$T/xdg HOME=$T/home XDG_DATA_HOME=$T/data
mkdir -p "$T/cfg" "$T/xdg/stepop" "$T/home"
cd "$T/cfg" || exit 1
# Every line but the GPU's, which depends on the machine; the probe's name normalised.
lines() { grep -v -e '^. gpu: ' -e '^✔ store space: ' "$T/out" | sed 's/probe-[0-9]*-[0-9]*/probe-N/'; }
gpu_ok() { grep -qE '^(✔|–) gpu: ' "$T/out"; }

echo '{"store": "'"$T"'/store"}' >stepop.json
chmod 600 stepop.json
expect_rc 0 "a good configuration: file store, local flavor" "$STEPOP" doctor
is_eq "its exact lines" "$(lines)" "✔ config: $T/cfg/stepop.json
✔ store reachable: file://$T/store/
✔ store writable: put and removed file://$T/store/doctor/probe-N
– operator: none configured: steps run with the local flavor
✔ flavor local: steps run as processes of this machine, as uid $(id -u)"
out_has "free in $T/store/" "the file store's room"
check "the GPU line is there and is no failure here" gpu_ok
check "the probe object is gone" sh -c "[ -z \"\$(ls -A '$T/store/doctor')\" ]"

echo '{}' >"$T/xdg/stepop/config.json"
chmod 666 "$T/xdg/stepop/config.json"
expect_rc 1 "an ignored (world-writable) configuration fails" "$STEPOP" doctor
out_has "✘ config ignored: $T/xdg/stepop/config.json: it is world-writable (mode 0666); chmod go-w it to use it" \
    "the ignored file and why"
chmod 600 "$T/xdg/stepop/config.json"
expect_rc 0 "the XDG file behind ./stepop.json" "$STEPOP" doctor
out_has "– config ignored: $T/xdg/stepop/config.json: ./stepop.json comes first" "says which comes first"

expect_rc 0 "--json" "$STEPOP" doctor --json
check "--json shape: ok, checks with check/status/detail" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is True and isinstance(d["checks"], list)
for c in d["checks"]:
    assert set(c) == {"check", "status", "detail"} and c["status"] in ("ok", "fail", "skip"), c
assert [c["check"] for c in d["checks"]][:4] == ["config ignored", "config", "store reachable", "store writable"]
' "$T/out"

rm "$T/xdg/stepop/config.json"
echo '{"stores": "x"}' >stepop.json
expect_rc 1 "a configuration with an unknown field" "$STEPOP" doctor
out_has "✘ config: $T/cfg/stepop.json: stores: unknown field (store, default_operator, operators)" "its error"
port=$(free_port)
echo '{"store": "http://127.0.0.1:'"$port"'/store"}' >stepop.json
expect_rc 1 "an http store with nothing listening" "$STEPOP" doctor
out_has "✘ store reachable: http://127.0.0.1:$port/store/: " "store reachable fails"
out_has "(hint: is the server up, are the credentials right?)" "with a hint"
out_has "– store writable: not tried: the store is not reachable" "writable is not tried"
out_has "– store credentials: none (STEPOP_HTTP_BEARER_TOKEN is not set)" "no bearer token"
STEPOP_HTTP_BEARER_TOKEN=s3cr3t-bearer-tok expect_rc 1 "the same with a bearer token" "$STEPOP" doctor
out_has "✔ store credentials: STEPOP_HTTP_BEARER_TOKEN, sent to 127.0.0.1 port $port only" "where the token goes"
check "never the token" sh -c "! grep -qF s3cr3t-bearer-tok '$T/out' '$T/err'"
echo '{"store": "'"$T"'/store", "operators": {"l": {"flavor": "local", "settings": {"state_dir": "'"$T"'/nowhere"}}}}' >stepop.json
expect_rc 1 "the local flavor with a missing state_dir" "$STEPOP" doctor --operator l
out_has "✘ flavor local: settings.state_dir $T/nowhere: No such file or directory (hint: create it, writable by you)" "says so"

echo '{"store": "s3://test/root", "operators": {"nope": {"flavor": "nebius"}}}' >stepop.json
if start_s3; then
    expect_rc 0 "S3 with good keys (a custom endpoint, no STS named)" "$STEPOP" doctor
    is_eq "its exact lines" "$(lines)" "✔ config: $T/cfg/stepop.json
✔ store reachable: s3://test/root/
✔ store writable: put and removed s3://test/root/doctor/probe-N
✔ store credentials: AWS environment (profile default, region us-east-1)
– store identity: custom S3 endpoint ${S3_URL#http://}: STS not asked (set AWS_ENDPOINT_URL_STS to ask one)
– operator: none configured: steps run with the local flavor
✔ flavor local: steps run as processes of this machine, as uid $(id -u)"
    if start_awsfake; then
        AWS_ENDPOINT_URL_STS=$AWSFAKE_URL expect_rc 0 "S3 with STS GetCallerIdentity" "$STEPOP" doctor
        out_has "✔ store identity: arn:aws:iam::123456789012:user/$S3_AKID (account 123456789012)" "whose keys"
        check "awsfake verified one signed GetCallerIdentity" test "$(awsfake_count "e.get('action') == 'GetCallerIdentity' and e.get('signed')")" = 1
        AWS_ENDPOINT_URL_STS=$AWSFAKE_URL AWS_SECRET_ACCESS_KEY=wrongsecretwrongsecretwrongsecret0000000 \
            expect_rc 1 "S3 with a wrong secret" "$STEPOP" doctor
        out_has "✘ store reachable: s3://test/root/: " "the store refuses"
        out_has "✘ store identity: STS GetCallerIdentity at $AWSFAKE_URL/: HTTP 403 SignatureDoesNotMatch" "so does STS"
        check "no secret in any output" sh -c "! grep -qF -e '$S3_SECRET' -e wrongsecretwrongsecret '$T/out' '$T/err'"
        # The sagemaker flavor on the SageMaker fake (botocore's model and SigV4 check; no job is made,
        # so Podman is never asked).
        PODMAN_DIR=$T/podman PODMAN_OWNER=doctor
        if start_sagemaker_fake; then
            echo '{"store": "s3://test/root", "operators": {"sm": {"flavor": "sagemaker", "settings": {"region": "us-east-1"}}}}' >stepop.json
            AWS_ENDPOINT_URL_STS=$AWSFAKE_URL expect_rc 0 "the sagemaker flavor" "$STEPOP" doctor --operator sm
            is_eq "its lines" "$(lines | sed -n '/operator/,$p')" "✔ operator: sm (flavor sagemaker)
✔ sagemaker credentials: AWS environment (profile default, region us-east-1)
✔ sagemaker identity: arn:aws:iam::123456789012:user/$S3_AKID (account 123456789012)
✔ flavor sagemaker: $SAGEMAKER_FAKE_URL/ (region us-east-1): ListTrainingJobs answered"
            check "the fake saw ListTrainingJobs and no CreateTrainingJob" sh -c "curl -s '$SAGEMAKER_FAKE_URL/_/log' | grep -q ListTrainingJobs && ! curl -s '$SAGEMAKER_FAKE_URL/_/log' | grep -q CreateTrainingJob"
            AWS_ENDPOINT_URL_STS=$AWSFAKE_URL AWS_SECRET_ACCESS_KEY=wrongsecretwrongsecretwrongsecret0000000 \
                expect_rc 1 "the sagemaker flavor with a wrong secret" "$STEPOP" doctor --operator sm
            out_has "✘ flavor sagemaker: $SAGEMAKER_FAKE_URL/: " "ListTrainingJobs refused"
            out_has "(hint: the role needs sagemaker:ListTrainingJobs)" "with a hint"
            echo '{"store": "s3://test/root", "operators": {"nope": {"flavor": "nebius"}}}' >stepop.json
        else
            not_ok "the SageMaker fake starts"
        fi
    else
        not_ok "awsfake starts"
    fi
    AWS_ACCESS_KEY_ID=AKIDUNKNOWN000000000 expect_rc 1 "S3 with an unknown key" "$STEPOP" doctor
    out_has "✘ store reachable: s3://test/root/: " "refused"
    expect_rc 1 "--operator naming a planned flavor" "$STEPOP" doctor --operator nope
    out_has "✔ operator: nope (flavor nebius)" "the operator"
    out_has "✘ flavor: " "the flavor is not in this build"
    expect_rc 1 "--operator naming no operator" "$STEPOP" doctor --operator missing
    out_has "✘ operator: " "says so"
    check "no secret in any output" sh -c "! grep -rqF '$S3_SECRET' '$T/out' '$T/err'"
else
    not_ok "s3rver and its proxy start"
fi
# The vertex flavor on the Vertex fake, with tokens from the Google auth fake: a service account
# key (whose account is said) and the metadata server (whose is not, without a call).
PODMAN_DIR=$T/podman PODMAN_OWNER=doctor
if start_google_auth_fake --tokens "$T/gtokens" --project vx-project && start_vertex_fake --tokens "$T/gtokens"; then
    echo '{"store": "'"$T"'/store", "default_operator": "vx", "operators": {"vx": {"flavor": "vertex", "settings": {"api_endpoint": "'"$VERTEX_FAKE_URL"'"}}}}' >stepop.json
    expect_rc 0 "the vertex flavor with the metadata server's token" "$STEPOP" doctor
    is_eq "its lines" "$(lines | sed -n '/operator/,$p')" "✔ operator: vx (flavor vertex)
✔ vertex credentials: Google metadata server
– vertex identity: not said by the metadata server without a call
✔ flavor vertex: $VERTEX_FAKE_URL/v1/projects/vx-project/locations/us-central1/customJobs: ListCustomJobs answered"
    if google_sa_key "$T/sa.json" doctor@vx-project.iam.gserviceaccount.com vx-project; then
        GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json expect_rc 0 "the vertex flavor with a service account key" "$STEPOP" doctor
        out_has "✔ vertex credentials: Google service account key" "the source"
        out_has "✔ vertex identity: service account doctor@vx-project.iam.gserviceaccount.com" "the account"
        check "no private key or token in the output" sh -c "! grep -qE 'PRIVATE KEY|ya29' '$T/out' '$T/err'"
    else
        not_ok "a service account key is made"
    fi
    # The gs store on tests/servers/gcs_fake.py, which takes only tokens the auth fake issued.
    if /usr/bin/python3 -c 'import crcmod.predefined' 2>/dev/null && [ -s "$T/sa.json" ]; then
        /usr/bin/python3 "$ROOT/tests/servers/gcs_fake.py" --port-file "$T/gcs.port" \
            --tokeninfo "$GOOGLE_AUTH_FAKE_URL/tokeninfo" >"$T/gcs_fake.log" 2>&1 &
        on_exit "kill $!"
        for _ in $(seq 100); do [ -s "$T/gcs.port" ] && break; sleep 0.05; done
        if wait_http "http://127.0.0.1:$(cat "$T/gcs.port")/_/log"; then
            echo '{"store": "gs://doctor-bucket/root"}' >stepop.json
            STEPOP_GCS_ENDPOINT=http://127.0.0.1:$(cat "$T/gcs.port") GOOGLE_APPLICATION_CREDENTIALS=$T/sa.json \
                expect_rc 0 "a gs store" "$STEPOP" doctor
            is_eq "its lines" "$(lines | sed -n '/store/,/identity/p')" "✔ store reachable: gs://doctor-bucket/root/
✔ store writable: put and removed gs://doctor-bucket/root/doctor/probe-N
✔ store credentials: Google service account key
✔ store identity: service account doctor@vx-project.iam.gserviceaccount.com"
            echo '{"store": "'"$T"'/store", "default_operator": "vx", "operators": {"vx": {"flavor": "vertex", "settings": {"api_endpoint": "'"$VERTEX_FAKE_URL"'"}}}}' >stepop.json
        else
            not_ok "the GCS fake starts"
        fi
    fi
    check "the fake saw ListCustomJobs only" sh -c "curl -s '$VERTEX_FAKE_URL/_/log' | grep -q ListCustomJobs && ! curl -s '$VERTEX_FAKE_URL/_/log' | grep -q CreateCustomJob"
    echo '{"store": "'"$T"'/store", "default_operator": "vx", "operators": {"vx": {"flavor": "vertex", "settings": {"api_endpoint": "http://127.0.0.1:'"$(free_port)"'"}}}}' >stepop.json
    expect_rc 1 "the vertex flavor with nothing listening" "$STEPOP" doctor
    out_has "(hint: the account needs aiplatform.customJobs.list)" "fails with a hint"
else
    not_ok "the Google auth and Vertex fakes start"
fi
# The azureml flavor on the Azure ML fake, with a token of the Entra fake (client secret): the
# identity is the token's appid and oid claims, never the token.
if start_azureml_fake; then
    aml='{"subscription_id": "'"$AZUREML_SUB"'", "resource_group": "'"$AZUREML_RG"'", "workspace": "'"$AZUREML_WS"'", "compute": "c", "api_version": "2022-10-01", "arm_endpoint": "'"$AZUREML_FAKE_URL"'"}'
    echo '{"store": "'"$T"'/store", "operators": {"aml": {"flavor": "azureml", "settings": '"$aml"'}}}' >stepop.json
    expect_rc 0 "the azureml flavor" "$STEPOP" doctor --operator aml
    oid=$(python3 -c "import uuid,sys; print(uuid.uuid5(uuid.NAMESPACE_URL, sys.argv[1]))" "$AZURE_FAKE_SECRET_CLIENT")
    is_eq "its lines" "$(lines | sed -n '/operator/,$p')" "✔ operator: aml (flavor azureml)
✔ azureml credentials: Azure environment (client secret)
✔ azureml identity: appid $AZURE_FAKE_SECRET_CLIENT, oid $oid
✔ flavor azureml: workspace $AZUREML_WS: the jobs list answered"
    check "no secret or token in the output" sh -c "! grep -qF -e '$AZURE_FAKE_SECRET' -e eyJ '$T/out' '$T/err'"
    AZURE_CLIENT_SECRET=Wr0ngS3cretXyz expect_rc 1 "the azureml flavor with a wrong secret" "$STEPOP" doctor --operator aml
    out_has "✘ azureml credentials: " "fails at the token"
    check "not even the wrong secret in the output" sh -c "! grep -qF Wr0ngS3cretXyz '$T/out' '$T/err'"
else
    not_ok "the Azure ML fake starts"
fi
# The az store on Azurite (strict, Shared Key checked): the key is named, never shown; a missing
# container fails the write.
if ! azurite_available; then
    ok "# SKIP Azurite is not installed (make deps)"
elif start_azurite --skipApiVersionCheck; then
    if azblob mkcontainer doctor >"$T/azblob.log" 2>&1; then
        echo '{"store": "az://doctor/root"}' >stepop.json
        expect_rc 0 "an az store with the account key" "$STEPOP" doctor
        is_eq "its lines" "$(lines | sed -n '/store/,/credentials/p')" "✔ store reachable: az://doctor/root/
✔ store writable: put and removed az://doctor/root/doctor/probe-N
✔ store credentials: account key of $AZURITE_ACCOUNT (Shared Key)"
        check "never the key" sh -c "! grep -qF '$AZURITE_KEY' '$T/out' '$T/err'"
        echo '{"store": "az://no-such-container/root"}' >stepop.json
        expect_rc 1 "an az store whose container is missing" "$STEPOP" doctor
        out_has "✘ store writable: az://no-such-container/root/doctor/probe-" "the write fails"
    else
        not_ok "the container is made"
        diag <"$T/azblob.log"
    fi
    azure_env_clear
else
    not_ok "Azurite starts"
fi
expect_rc 2 "a stray argument is a usage error" "$STEPOP" doctor extra
done_testing
