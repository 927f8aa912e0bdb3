#!/usr/bin/env bash
# What of stepop reaches the step: no descriptor above 2 (stepop's sockets to an HTTP store, its
# spool file), and the environment less the manifest's env_drop.
. "$(dirname "$0")/../lib.sh"
export STEPOP_LOG_INTERVAL=200ms
store=$T/store

# env_drop: names and prefixes leave the inherited environment; the manifest's env and stepop's
# own variables are not touched.
export AWS_SECRET_ACCESS_KEY=s3cr3t AWS_REGION=eu-west-1 SECRET_TOKEN=tok SECRET_TOKEN_FILE=/f KEEP_ME=kept
manifest "$T/keep.json" "file://$store/runs/keep" "\"command\":[\"env\"],\"workdir\":\"$T/w0\""
expect_rc 0 "without env_drop the step inherits stepop's environment" "$STEPOP" run --manifest "$T/keep.json"
out_has "AWS_SECRET_ACCESS_KEY=s3cr3t" "credentials included (docs/protocol.md says so)"
manifest "$T/drop.json" "file://$store/runs/drop" "\"command\":[\"env\"],\"workdir\":\"$T/w1\",
  \"env\":{\"AWS_PROFILE\":\"explicit\"},\"env_drop\":[\"AWS_*\",\"SECRET_TOKEN\"]"
expect_rc 0 "a run with env_drop succeeds" "$STEPOP" run --manifest "$T/drop.json"
check "a prefix drops every variable it matches" sh -c "! grep -E '^AWS_(SECRET_ACCESS_KEY|REGION)=' '$T/out'"
check "a name drops that variable" sh -c "! grep -q '^SECRET_TOKEN=' '$T/out'"
out_has "SECRET_TOKEN_FILE=/f" "a name drops only that exact name"
out_has "KEEP_ME=kept" "other variables are inherited"
out_has "AWS_PROFILE=explicit" "the manifest's own env is not dropped"
out_has "STEPOP_RUN_ID=drop" "stepop's variables are set"
manifest "$T/bad-drop.json" "file://$store/runs/bd" "\"command\":[\"true\"],\"env_drop\":[\"AWS-*\"]"
expect_rc 65 "a malformed env_drop entry is a manifest error" "$STEPOP" run --manifest "$T/bad-drop.json"
err_has "env_drop[0]: \"AWS-*\" is not a variable name or a prefix ending in '*'" "naming the entry"
unset AWS_SECRET_ACCESS_KEY AWS_REGION SECRET_TOKEN SECRET_TOKEN_FILE KEEP_ME

# Descriptors: with an HTTP store stepop holds sockets (manifest, status, logs) while the step runs.
if command -v nginx >/dev/null && start_nginx; then
    printf 'data\n' >"$NGINX_ROOT/in.txt"
    manifest "$T/fd.json" "$NGINX_URL/runs/fd" "\"command\":[\"ls\",\"/proc/self/fd\"],\"workdir\":\"$T/wfd\",
      \"inputs\":[{\"name\":\"in\",\"uri\":\"$NGINX_URL/in.txt\"}]"
    "$STEPOP" artifact put "$T/fd.json" "$NGINX_URL/runs/fd/manifest.json" >/dev/null 2>&1
    expect_rc 0 "a run on the HTTP store that lists its descriptors" \
        env STEPOP_MANIFEST="$NGINX_URL/runs/fd/manifest.json" "$STEPOP" run
    # 3 is ls's own handle on /proc/self/fd.
    is_eq "the step has only 0, 1, 2 (and ls's directory)" "$(tr '\n' ' ' <"$T/out")" "0 1 2 3 "
else
    not_ok "nginx starts"
fi
# Plain init (no manifest, the step's output not captured): a descriptor stepop inherited stays
# out of the step too.
expect_rc 0 "plain init with a descriptor open above 2" sh -c "exec 7</dev/null; exec '$STEPOP' run -- ls /proc/self/fd"
is_eq "the step has only 0, 1, 2 (and ls's directory)" "$(tr '\n' ' ' <"$T/out")" "0 1 2 3 "

done_testing
