#!/usr/bin/env bash
# The Modal fake (tests/servers/modal_fake.js) checked with Modal's own JavaScript SDK (npm modal
# 0.11.1, tests/servers/modal_client.js) as the client, before the modal flavor relies on it: a
# sandbox runs in Podman with the ephemeral secret's environment, its exit code, stdout and stderr
# come back; Sandbox.fromId sees a running one (tags, poll), terminate reaches its SIGTERM trap;
# timeout, a missing image, a command that cannot run; the scripted UNAVAILABLE (retried with one
# idempotency key, a lost answer replayed), INIT_FAILURE, MEMORY_MANAGER_EVICTION and capacity;
# the SDK's auth (AuthTokenGet, then x-modal-auth-token; refreshed before exp); wrong credentials,
# no auth token and a field Modal's message lacks refused; logs resumed after an entry id; the
# containers removed on SIGTERM.
. "$(dirname "$0")/../lib.sh"
modal_fake_available || skip_all "npm modal or @grpc/grpc-js is not installed (make deps)"
start_podman || { not_ok "podman starts"; done_testing; }
BUSYBOX=localhost/stepop-test/busybox:$(sha256sum /bin/busybox | cut -c1-16)
if ! podman_cli image exists "$BUSYBOX"; then
    podman_rootfs "$T/rootfs"
    tar -C "$T/rootfs" -c . | podman_cli import --change 'CMD ["/bin/sh", "-c", "echo the image CMD ran; exit 99"]' \
        - "$BUSYBOX" >"$T/import.log" 2>&1 || { not_ok "busybox image builds"; diag <"$T/import.log"; done_testing; }
fi
export HOME=$T/home
mkdir -p "$HOME"
start_modal_fake --stop-grace 3 --container-env TEST_ONLY=1 ||
    { not_ok "the Modal fake starts"; diag <"$T/modal_fake.log"; done_testing; }
ok "the Modal fake listens at $MODAL_SERVER_URL"

# sandbox NAME JSON-FIELDS: a create request for modal_client.js on busybox
sb_json() { printf '{"image": "%s", "app": "fake-check"%s}' "$BUSYBOX" "${1:+, $1}"; }
field() { jq_py "$1" "($2)" 2>&1; }
sb_field() { # ID PYEXPR over s (the fake's view of the sandbox)
    modal_sandboxes | python3 -c "import json,sys; s=[s for s in json.load(sys.stdin) if s['id']==sys.argv[1]][0]; print(($2))" "$1" 2>&1
}
# wait_sb ID PYEXPR: until EXPR holds for the sandbox (30 s at most)
wait_sb() {
    local i
    for i in $(seq 150); do [ "$(sb_field "$1" "$2")" = True ] && return 0; sleep 0.2; done
    return 1
}

# --- a sandbox runs, its exit code, stdout and stderr come back ---
expect_rc 0 "the SDK creates a sandbox and waits for it" modal_client create "$(sb_json '"command": ["sh", "-c",
    "echo \"hello $GREETING test=$TEST_ONLY in $MODAL_SANDBOX_ID\"; echo to-stderr >&2; exit 3"], "env": {"GREETING": "from the secret"},
    "tags": {"run": "r1"}, "wait": true')"
cp "$T/out" "$T/first.json"
id=$(field "$T/first.json" "d['sandboxId']")
is_eq "the exit code" "$(field "$T/first.json" "d['exitCode']")" 3
is_eq "stdout, with the ephemeral secret's environment" "$(field "$T/first.json" "d['stdout']")" "hello from the secret test=1 in $id"
is_eq "stderr" "$(field "$T/first.json" "d['stderr']")" "to-stderr"
is_eq "the fake's result: FAILURE, exit code 3" "$(sb_field "$id" "s['result']['status'], s['result']['exitcode']")" "('FAILURE', 3)"
check "a V1 sandbox id (sb- and 22 characters)" sh -c "echo '$id' | grep -qE '^sb-[0-9A-Za-z]{22}$'"
modal_log >"$T/log.json"
is_eq "the calls the SDK made for it" "$(jq_py "$T/log.json" "[e['method'] for e in d if e['method'] not in ('SandboxGetTaskId', 'SandboxGetLogs')]")" \
    "['AuthTokenGet', 'AppGetOrCreate', 'EnvironmentGetOrCreate', 'ImageGetOrCreate', 'ImageJoinStreaming', 'SecretGetOrCreate', 'SandboxCreate', 'SandboxWait']"
is_eq "all answered OK, decoded by Modal's codecs with nothing skipped" \
    "$(jq_py "$T/log.json" "sorted(set((e['code'], bool(e.get('unknown_fields'))) for e in d))")" "[('OK', False)]"
is_eq "the SDK's headers: client type 8, an idempotency key per unary call, the auth token after AuthTokenGet" \
    "$(jq_py "$T/log.json" "sorted(set((e['client_type'], e['idempotency_key'] is not None or e['method'].endswith(('Streaming', 'Logs')), e['auth']) for e in d))")" \
    "[('8', True, 'ok'), ('8', True, 'token')]"
is_eq "the secret's values are not in the fake's log" "$(grep -c 'from the secret' "$T/log.json")" 0
is_eq "SandboxCreate carried the definition and tags" \
    "$(jq_py "$T/log.json" "[(e['request']['definition']['entrypointArgs'][0], e['request']['definition']['timeoutSecs'], e['request']['tags']) for e in d if e['method'] == 'SandboxCreate'][0]")" \
    "('sh', 300, [{'tagName': 'run', 'tagValue': 'r1'}])"

# --- Sandbox.fromId on a running sandbox; terminate reaches its trap ---
expect_rc 0 "a long sandbox with a name" modal_client create "$(sb_json '"command": ["sh", "-c",
    "trap \"echo got SIGTERM; exit 143\" TERM; echo waiting; while :; do sleep 1; done"], "name": "sleeper", "tags": {"run": "r2"}')"
id2=$(field "$T/out" "d['sandboxId']")
check "it runs" wait_sb "$id2" "s['state'] == 'running'"
expect_rc 0 "Sandbox.fromId" modal_client fromid "$id2"
is_eq "... sees its tags and that it runs (poll: null)" "$(field "$T/out" "d['tags'], d['returnCode']")" "({'run': 'r2'}, None)"
expect_rc 0 "SandboxList by tag" modal_client raw SandboxList '{"tags": [{"tagName": "run", "tagValue": "r2"}]}'
is_eq "... finds it alone" "$(field "$T/out" "[s['id'] for s in d['messages'][0]['sandboxes']]")" "['$id2']"
expect_rc 0 "SandboxGetFromName" modal_client raw SandboxGetFromName '{"appName": "fake-check", "sandboxName": "sleeper"}'
is_eq "... finds it by name" "$(field "$T/out" "d['messages'][0]['sandboxId']")" "$id2"
expect_rc 0 "the SDK terminates it" modal_client terminate "$id2"
is_eq "... wait gives 137 (the SDK's value for TERMINATED)" "$(field "$T/out" "d['exitCode']")" 137
is_eq "the fake's result: TERMINATED with the trap's exit code" "$(sb_field "$id2" "s['result']['status'], s['result']['exitcode']")" "('TERMINATED', 143)"
expect_rc 0 "its logs after the end" modal_client logs "$id2"
is_eq "... complete: the trap ran" "$(field "$T/out" "d['stdout']")" "$(printf 'waiting\ngot SIGTERM')"

# --- logs resumed after an entry id, eof at the end ---
expect_rc 0 "SandboxGetLogs from the start" modal_client raw SandboxGetLogs "{\"sandboxId\": \"$id2\", \"fileDescriptor\": 1, \"timeout\": 0, \"lastEntryId\": \"0-0\"}"
first=$(field "$T/out" "d['messages'][0]['items'][0]['data'].strip(), d['messages'][-1].get('eof')")
is_eq "... both lines, then eof" "$first" "('waiting', True)"
entry=$(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['messages'][0]['entryId'])" "$T/out")
all=$(field "$T/out" "''.join(i['data'] for m in d['messages'] for i in m.get('items', []))")
modal_client raw SandboxGetLogs "{\"sandboxId\": \"$id2\", \"fileDescriptor\": 1, \"timeout\": 0, \"lastEntryId\": \"$entry\"}" >"$T/out"
is_eq "resumed after the last entry id: nothing again, eof" "$(field "$T/out" "[(len(m.get('items', [])), m.get('eof')) for m in d['messages']]")" "[(0, True)]"
is_eq "the entries hold the whole output" "$all" "$(printf 'waiting\ngot SIGTERM')"

# --- the sandbox's timeout ---
expect_rc 0 "a sandbox past its timeoutMs" modal_client create "$(sb_json '"command": ["sleep", "60"], "timeoutMs": 2000, "wait": true')"
is_eq "... wait gives 124 (TIMEOUT)" "$(field "$T/out" "d['exitCode']")" 124
is_eq "... the fake's result is TIMEOUT" "$(sb_field "$(field "$T/out" "d['sandboxId']")" "s['result']['status']")" TIMEOUT

# --- a command that cannot run; an image that is not there ---
expect_rc 0 "a command missing from the image" modal_client create "$(sb_json '"command": ["/usr/local/bin/stepop", "run"], "wait": true')"
is_eq "... FAILURE with the runtime's exit code 127" "$(field "$T/out" "d['exitCode']")" 127
check "... the runtime's words on stderr" grep -q "/usr/local/bin/stepop" "$T/out"
expect_rc 1 "an image missing from the local storage" modal_client create '{"image": "localhost/stepop-test/no-such-image:1", "command": ["true"]}'
err_has "Image build for im-" "... the SDK reports the failed build"
err_has "not in the local Podman storage" "... in the fake's words"

# --- UNAVAILABLE, retried with the same idempotency key; a lost answer replayed ---
modal_script '{"method": "SandboxCreate", "code": "UNAVAILABLE", "times": 2}'
expect_rc 0 "SandboxCreate answering UNAVAILABLE twice" modal_client create "$(sb_json '"command": ["true"], "tags": {"run": "r3"}, "wait": true')"
modal_log >"$T/log.json"
is_eq "... three attempts, one idempotency key, attempts 0 1 2" \
    "$(jq_py "$T/log.json" "(lambda c: (len(set(e['idempotency_key'] for e in c)), [e['retry_attempt'] for e in c], [e['code'] for e in c]))([e for e in d if e['method'] == 'SandboxCreate'][-3:])")" \
    "(1, [0, 1, 2], ['UNAVAILABLE', 'UNAVAILABLE', 'OK'])"
before=$(modal_sandboxes | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
modal_script '{"method": "SandboxCreate", "code": "UNAVAILABLE", "times": 1, "after": true}'
expect_rc 0 "SandboxCreate whose first answer is lost" modal_client create "$(sb_json '"command": ["true"], "wait": true')"
modal_log >"$T/log.json"
is_eq "... the retry got the first call's sandbox (replayed by its idempotency key)" \
    "$(jq_py "$T/log.json" "[(e['code'], e.get('replayed', False)) for e in d if e['method'] == 'SandboxCreate'][-2:]")" "[('UNAVAILABLE', False), ('OK', True)]"
is_eq "... one sandbox made" "$(modal_sandboxes | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")" $((before + 1))

# --- scripted results: INIT_FAILURE, MEMORY_MANAGER_EVICTION; capacity ---
modal_script '{"sandbox": "init", "result": "INIT_FAILURE", "exception": "Mount failed: bucket not found"}'
expect_rc 0 "a sandbox scripted to fail initializing" modal_client create "$(sb_json '"command": ["true"], "name": "init", "wait": true')"
id=$(field "$T/out" "d['sandboxId']")
is_eq "... INIT_FAILURE with the exception" "$(sb_field "$id" "s['result']['status'], s['result']['exception'], s['container']")" \
    "('INIT_FAILURE', 'Mount failed: bucket not found', None)"
modal_script '{"sandbox": "evict", "result": "MEMORY_MANAGER_EVICTION", "after": 1}'
expect_rc 0 "a sandbox scripted to be evicted after 1 s" modal_client create "$(sb_json '"command": ["sleep", "60"], "name": "evict", "wait": true')"
id=$(field "$T/out" "d['sandboxId']")
is_eq "... MEMORY_MANAGER_EVICTION, killed (137)" "$(sb_field "$id" "s['result']['status'], s['result']['exitcode']")" "('MEMORY_MANAGER_EVICTION', 137)"
modal_script '{"sandbox": "nocap", "capacity": true}'
modal_client create "$(sb_json '"command": ["true"], "name": "nocap"')" >"$T/nocap.out" 2>&1 &
client=$!
for i in $(seq 100); do
    id=$(modal_sandboxes | python3 -c "import json,sys; print(''.join(s['id'] for s in json.load(sys.stdin) if s['name'] == 'nocap'))")
    [ -n "$id" ] && break
    sleep 0.2
done
sleep 3
is_eq "a sandbox without capacity stays without a task" "$(sb_field "$id" "s['state'], s['task_id']")" "('pending', None)"
expect_rc 0 "... SandboxGetTaskId: no task id" modal_client raw SandboxGetTaskId "{\"sandboxId\": \"$id\"}"
is_eq "... in the answer" "$(field "$T/out" "d['messages'][0]")" "{}"
kill "$client" 2>/dev/null
wait "$client" 2>/dev/null
expect_rc 0 "... the SDK terminates it" modal_client terminate "$id"
is_eq "... TERMINATED before it was scheduled" "$(sb_field "$id" "s['result']['status'], s['container']")" "('TERMINATED', None)"

# --- auth ---
MODAL_TOKEN_SECRET=wrong expect_rc 1 "a wrong token secret is refused" modal_client fromid "$id"
err_has "Token ID or secret is invalid" "... UNAUTHENTICATED, in the fake's words"
MODAL_RAW_NO_AUTH=1 expect_rc 0 "a call without x-modal-auth-token" modal_client raw SandboxTagsGet "{\"sandboxId\": \"$id\"}"
is_eq "... is UNAUTHENTICATED (16)" "$(field "$T/out" "d['code']")" 16
expect_rc 0 "a request with a field Modal's message lacks (field 15, varint)" modal_client raw SandboxWait "{\"sandboxId\": \"$id\"}" 7801
is_eq "... is INVALID_ARGUMENT naming it" "$(field "$T/out" "d['code'], d['details']")" \
    "(3, \"the request has fields Modal's SandboxWait request does not define: field 15 (wire type 0)\")"
expect_rc 0 "a known field with another wire type (SandboxWait.timeout as a double)" modal_client raw SandboxWait "{\"sandboxId\": \"$id\"}" 11000000000000f03f
is_eq "... is INVALID_ARGUMENT" "$(field "$T/out" "d['code'], d['details'].split(': ')[-1]")" "(3, 'field 2 (wire type 1)')"
modal_script '{"token_lifetime": 4}'
n0=$(modal_log | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
expect_rc 0 "a sandbox for 6 s" modal_client create "$(sb_json '"command": ["sleep", "6"]')"
id=$(field "$T/out" "d['sandboxId']")
expect_rc 0 "a client polling it longer than its 4 s auth token lives" modal_client poll "$id"
modal_log >"$T/log.json"
is_eq "... fetched a new one before exp, and no call was refused" \
    "$(jq_py "$T/log.json" "(sum(1 for e in d[$n0:] if e['method'] == 'AuthTokenGet') >= 2, sorted(set(e['code'] for e in d[$n0:])))")" \
    "(True, ['OK'])"
n=$(podman_cli ps -aq --filter "label=stepop-test.owner=$PODMAN_OWNER" | wc -l)
kill "$MODAL_FAKE_PID"
wait "$MODAL_FAKE_PID"
is_eq "on SIGTERM the fake removed its $n containers" "$(podman_cli ps -aq --filter "label=stepop-test.owner=$PODMAN_OWNER" | wc -l)" 0
done_testing
