# shellcheck shell=bash disable=SC2034
# The flavor conformance suite (DESIGN.md §8's list, numbered as there), sourced by a runner after
# tests/lib.sh and one bed (tests/conformance/beds/FLAVOR.sh). The runner calls conformance_main.
#
# A bed defines:
#   BED_FLAVOR                 the flavor's name
#   bed_setup                  starts its fakes; nonzero: the whole suite is skipped (saying why)
#   bed_config                 writes ./stepop.json (the store and the default operator) and sets
#                              CF_DATA (a store URI prefix for inputs) and CF_RUNS (the runs prefix)
#   bed_step_args              the submit options every step needs (the image), one per line
#   bed_app                    (optional) the words every step's command starts with, one per line,
#                              for a flavor whose command is an application that then runs the
#                              suite's command (spark); none: the suite's command is the step's
#   bed_can_oom                prints the options that make a 200 MiB step OOM; nonzero: no OOM.
#                              bed_before_oom (optional) scripts the platform's OOM first;
#                              BED_OOM_RC=any: the platform's own OOM gives no code 137
#   bed_missing_image_args     prints the options of a job that cannot start; nonzero: not applicable.
#                              BED_MISSING_RC: the exit code it must end with
#   bed_unsupported_args       prints options asking for a resource the flavor cannot give;
#                              nonzero: the flavor gives every resource. BED_UNSUPPORTED_WORD: what
#                              its message names (default "resources.")
#   BED_SETTING_WORD           how the flavor's refusal names the unknown setting bogus_setting
#                              (default "settings.bogus_setting"; a plugin words its own)
#   bed_jobs                   prints how many jobs (containers, processes) exist on the platform
#   bed_forge_handle RUN       rewrites RUN's submission.json so its handle names a job without
#                              RUN's label; nonzero: not applicable. BED_REFUSED_WORD: what cancel's
#                              refusal says (default "refusing to act on it"; a plugin words its own)
#   bed_forged_intact          zero while the job the forged handle names was left alone
#   bed_unforge_handle RUN     puts back the handle bed_forge_handle replaced
#   bed_api_down / bed_api_up  (optional) make the platform's API unreachable and back
#   bed_secrets                the strings that must never appear, one per line (may be none)
#   bed_object_file URI        (optional) the local file holding a stored object
#   CF_STORE_DIR               (optional) where the store keeps its objects, searched for secrets
#   bed_teardown               (optional) anything lib.sh's on_exit does not stop
# Each check prints TAP lines; a check that does not apply on a bed is one "# SKIP" line saying why.

cf_skip() { ok "$1 # SKIP $2"; }
cf_run_of() { sed -n 's/.*run \([0-9A-Z]\{26\}\).*/\1/p' "$1" | head -1; }
cf_status() { "$STEPOP" status "$1" --json 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)" 2>/dev/null; }
# cf_submit ARGS...: stepop submit with the bed's step options (stdout $T/out, stderr $T/err)
cf_submit() { "$STEPOP" submit "${CF_STEP_ARGS[@]}" "$@"; }
cf_wait_for() { # FILE TEXT [TENTHS]: until FILE holds TEXT
    local _
    for _ in $(seq "${3:-900}"); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
cf_put() { "$STEPOP" artifact put "$1" "$2" >/dev/null 2>"$T/put.err" || diag <"$T/put.err"; }

# 1. The step's exit code comes back (0, 3, 137 when the step is killed by SIGKILL).
cf_exit_codes() {
    expect_rc 0 "1: a step that exits 0" cf_submit -- "${CF_APP[@]}" sh -c 'echo fine'
    out_has fine "1: its output came back"
    expect_rc 3 "1: a step that exits 3: submit exits 3" cf_submit -- "${CF_APP[@]}" sh -c 'exit 3'
    is_eq "1: its status says failed, exit code 3" "$(cf_status "$(cf_run_of "$T/err")" "d['phase'], d['exit_code']")" "failed 3"
    expect_rc 137 "1: a step killed by SIGKILL: submit exits 137" cf_submit -- "${CF_APP[@]}" sh -c 'kill -KILL $$'
}

# 2. Logs arrive while the step runs and are complete at the end.
cf_logs() {
    "$STEPOP" submit "${CF_STEP_ARGS[@]}" -- "${CF_APP[@]}" sh -c 'echo early-line; sleep 6; printf "the last line"' >"$T/logs.out" 2>"$T/logs.err" &
    local sub=$!
    cf_wait_for "$T/logs.out" early-line
    check "2: a line arrives while the step runs" kill -0 "$sub"
    wait "$sub"
    is_eq "2: the step succeeds" "$?" 0
    check "2: the line printed just before exit (no newline) arrived" grep -q "the last line" "$T/logs.out"
}

# 3. Inputs (a file, an unpacked tar.zst) fetched; outputs stored, fetched back identical,
# outputs.json written last.
cf_inputs_outputs() {
    mkdir -p "$T/tree/sub" && printf 'packed\n' >"$T/tree/sub/p.txt"
    printf 'the input\n' >"$T/in.txt"
    cf_put "$T/tree" "${CF_DATA}tree.tar.zst"
    cf_put "$T/in.txt" "${CF_DATA}in.txt"
    expect_rc 0 "3: a step with a file and a tar.zst input, a tar.zst and a file output" \
        cf_submit --input data="${CF_DATA}in.txt" --input tree="${CF_DATA}tree.tar.zst" \
        --output result=out@tar.zst --output one=one.txt@file -- "${CF_APP[@]}" \
        sh -c 'cat data tree/sub/p.txt; mkdir out; cp -r tree out/tree; cat data >out/copy.txt; echo single >one.txt'
    out_has "the input" "3: the file input was fetched"
    out_has packed "3: the tar.zst input was unpacked"
    local r
    r=$(cf_run_of "$T/err")
    rm -rf "$T/got" && mkdir -p "$T/got"
    "$STEPOP" artifact get "${CF_RUNS}$r/outputs/result.tar.zst" "$T/got/result.tar.zst" >/dev/null 2>&1
    mkdir -p "$T/got/result" && zstd -dc "$T/got/result.tar.zst" 2>/dev/null | tar -C "$T/got/result" -x 2>/dev/null
    check "3: the tar.zst output fetched back is identical" sh -c "cmp '$T/in.txt' '$T/got/result/copy.txt' && cmp '$T/tree/sub/p.txt' '$T/got/result/tree/sub/p.txt'"
    "$STEPOP" artifact get "${CF_RUNS}$r/outputs/one" "$T/got/one" >/dev/null 2>&1
    is_eq "3: the file output fetched back" "$(cat "$T/got/one" 2>/dev/null)" single
    "$STEPOP" artifact get "${CF_RUNS}$r/outputs.json" "$T/got/outputs.json" >/dev/null 2>&1
    is_eq "3: outputs.json names both outputs" \
        "$(jq_py "$T/got/outputs.json" "' '.join(sorted(o['name'] for o in d['outputs']))" 2>/dev/null)" "one result"
    if type bed_object_file >/dev/null 2>&1; then
        local a b
        a=$(bed_object_file "${CF_RUNS}$r/outputs/result.tar.zst")
        b=$(bed_object_file "${CF_RUNS}$r/outputs.json")
        check "3: outputs.json was stored after the outputs" sh -c "test -f '$a' && test -f '$b' && ! [ '$a' -nt '$b' ]"
    else
        cf_skip "3: outputs.json stored last" "the bed cannot see the store's objects"
    fi
}

# 4. Ctrl-C at the submitter: SIGTERM to the step, its trap runs, terminated, logs complete.
cf_ctrl_c() {
    cat >"$T/trap.sh" <<'SH'
trap 'echo "step got TERM"; sleep 1; echo "step cleaned up"; exit 9' TERM
echo "step started"
while :; do sleep 0.1; done
SH
    cf_put "$T/trap.sh" "${CF_DATA}trap.sh"
    "$STEPOP" submit "${CF_STEP_ARGS[@]}" --grace 20s --input s="${CF_DATA}trap.sh" -- "${CF_APP[@]}" sh s >"$T/int.out" 2>"$T/int.err" &
    local sub=$! rc r
    cf_wait_for "$T/int.out" "step started"
    kill -INT "$sub"
    wait "$sub"
    rc=$?
    is_eq "4: Ctrl-C: the step's trap exit code comes back" "$rc" 9
    check "4: the logs are complete (the trap's last line)" grep -q "step cleaned up" "$T/int.out"
    r=$(cf_run_of "$T/int.err")
    is_eq "4: the run ends terminated" "$(cf_status "$r" "d['phase'], d['reason']")" "terminated terminated"
}

# 5. timeout gives reason timeout; an OOM gives oom_killed where the bed can cause one.
cf_timeout_oom() {
    expect_rc 143 "5: --timeout ends the step (SIGTERM: 143)" cf_submit --timeout 2s --grace 1s -- "${CF_APP[@]}" sleep 60
    is_eq "5: reason timeout" "$(cf_status "$(cf_run_of "$T/err")" "d['reason']")" timeout
    local oom
    if oom=$(bed_can_oom); then
        type bed_before_oom >/dev/null 2>&1 && bed_before_oom
        local fill='exec dd if=/dev/zero of=/dev/null bs=200M count=1'
        [ -n "${BED_OOM_RC:-}" ] && fill='sleep 30'
        # shellcheck disable=SC2086
        cf_submit $oom -- "${CF_APP[@]}" sh -c "echo filling; $fill" >"$T/out" 2>"$T/err"
        local rc=$?
        if [ -n "${BED_OOM_RC:-}" ]; then
            check "5: a step over its memory fails (exit $rc)" test "$rc" -ne 0
        else
            is_eq "5: a step over its memory: 137" "$rc" 137
        fi
        is_eq "5: reason oom_killed" "$(cf_status "$(cf_run_of "$T/err")" "d['phase'], d['reason']")" "failed oom_killed"
    else
        cf_skip "5: OOM" "$oom"
    fi
}

# 6. A job that cannot start fails with the platform's words within the pending timeout.
cf_cannot_start() {
    local args t0
    if ! args=$(bed_missing_image_args); then cf_skip "6: a job that cannot start" "$args"; return; fi
    t0=$SECONDS
    # shellcheck disable=SC2086
    expect_rc "$BED_MISSING_RC" "6: a job that cannot start ends with exit $BED_MISSING_RC" \
        "$STEPOP" submit --pending-timeout 30s $args -- "${CF_APP[@]}" true
    check "6: within the pending timeout ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -lt 60
    check "6: with a message saying why" grep -qiE "image|pull|start|fail" "$T/err"
}

# 7. An unknown setting and an unsupported resource are refused before anything is created.
cf_refusals() {
    local before args
    before=$(bed_jobs)
    python3 -c 'import json, sys; print(json.dumps({"command": sys.argv[1:], "settings": {"bogus_setting": 1}}))' \
        "${CF_APP[@]}" true >"$T/bogus.json"
    expect_rc 2 "7: an unknown setting is refused (exit 2)" cf_submit "$T/bogus.json"
    err_has "${BED_SETTING_WORD:-settings.bogus_setting}" "7: naming it"
    if args=$(bed_unsupported_args); then
        # shellcheck disable=SC2086
        expect_rc 2 "7: an unsupported resource is refused (exit 2)" cf_submit $args -- "${CF_APP[@]}" true
        err_has "${BED_UNSUPPORTED_WORD:-resources.}" "7: naming the field"
    else
        cf_skip "7: an unsupported resource" "$args"
    fi
    is_eq "7: nothing was created" "$(bed_jobs)" "$before"
}

# 8. --dry-run creates nothing and shows the requests.
cf_dry_run() {
    local before
    before=$(bed_jobs)
    expect_rc 0 "8: --dry-run" cf_submit --dry-run -- "${CF_APP[@]}" echo hi
    check "8: it shows the flavor and its requests" python3 -c "
import json; d = json.load(open('$T/out'))
assert d['flavor'] == '$BED_FLAVOR' and d['requests'], d"
    is_eq "8: nothing was created" "$(bed_jobs)" "$before"
    check "8: no run was written" sh -c "! '$STEPOP' status '$(jq_py "$T/out" "d['run_id']")' >/dev/null 2>&1"
}

# 9. --detach, then status, logs -f and cancel from other processes.
cf_detach() {
    local r
    expect_rc 0 "9: --detach prints the run id" cf_submit --detach -- "${CF_APP[@]}" sh -c 'echo detached-start; sleep 3; echo detached-end; exit 4'
    r=$(tail -1 "$T/out" | tr -d '\n')
    expect_rc 0 "9: stepop logs -f follows it to the end" "$STEPOP" logs -f "$r"
    out_has detached-start "9: from the start"
    out_has detached-end "9: to the end"
    expect_rc 0 "9: stepop status" "$STEPOP" status "$r" --json
    is_eq "9: the final status and the flavor" "$(jq_py "$T/out" "d['phase'], d['exit_code'], d['flavor']")" "failed 4 $BED_FLAVOR"
    expect_rc 0 "9: another detached run" cf_submit --detach --grace 5s -- "${CF_APP[@]}" sh -c 'echo waiting; sleep 120'
    r=$(tail -1 "$T/out" | tr -d '\n')
    "$STEPOP" logs -f "$r" >"$T/det.out" 2>&1 &
    local lf=$!
    cf_wait_for "$T/det.out" waiting
    expect_rc 0 "9: stepop cancel --wait from another process" "$STEPOP" cancel --wait "$r"
    is_eq "9: it ends terminated" "$(cf_status "$r" "d['phase']")" terminated
    wait "$lf"
    is_eq "9: the logs -f follower ends with it" "$?" 0
}

# 10. A handle whose job lacks the run id's label is refused by cancel and cleanup.
cf_forged_handle() {
    local r
    expect_rc 0 "10: a detached run" cf_submit --detach --grace 2s -- "${CF_APP[@]}" sleep 120
    r=$(tail -1 "$T/out" | tr -d '\n')
    sleep 1
    if ! bed_forge_handle "$r" >"$T/forge.why"; then
        cf_skip "10: a forged handle" "$(cat "$T/forge.why")"
        "$STEPOP" cancel "$r" >/dev/null 2>&1
        return
    fi
    "$STEPOP" cancel "$r" >"$T/out" 2>"$T/err"
    is_eq "10: cancel refuses the forged handle (exit 4)" "$?" 4
    err_has "${BED_REFUSED_WORD:-refusing to act on it}" "10: saying why"
    "$STEPOP" cancel --wait "$r" >"$T/out" 2>"$T/err"
    check "10: cancel --wait (cancel, then cleanup) refuses it too" test $? -ne 0
    check "10: the job the handle names was left alone" bed_forged_intact
    bed_unforge_handle "$r"
    expect_rc 0 "10: with its own handle back, the run cancels" "$STEPOP" cancel --wait "$r"
}

# 11. The platform's API unreachable for 10 s while following: the follow loop rides it out.
cf_api_down() {
    if ! type bed_api_down >/dev/null 2>&1; then
        cf_skip "11: the platform's API down for 10 s" "${BED_NO_API:-the bed has no API to stop}"
        return
    fi
    "$STEPOP" submit "${CF_STEP_ARGS[@]}" -- "${CF_APP[@]}" sh -c 'echo before; sleep 14; echo after-the-outage' >"$T/out11" 2>"$T/err11" &
    local sub=$!
    cf_wait_for "$T/out11" before
    bed_api_down
    sleep 10
    bed_api_up
    wait "$sub"
    is_eq "11: the follow loop rode out 10 s without the API" "$?" 0
    check "11: with the logs complete" grep -q after-the-outage "$T/out11"
}

# 12. No credential in any output, dry-run, status or stored object.
cf_no_credentials() {
    local secrets=() s leaks
    mapfile -t secrets < <(bed_secrets)
    if [ ${#secrets[@]} -eq 0 ]; then
        cf_skip "12: no credential anywhere" "the bed uses no credential"
        return
    fi
    cf_submit --dry-run -- "${CF_APP[@]}" true >"$T/dry12.out" 2>&1
    leaks=$(for s in "${secrets[@]}"; do
        [ -n "$s" ] && grep -rlF -- "$s" "$T"/*.out "$T"/*.err "$T"/out* "$T"/err* ${CF_STORE_DIR:+"$CF_STORE_DIR"} 2>/dev/null
    done | sort -u)
    is_eq "12: none of the bed's ${#secrets[@]} secrets in any output, dry-run, status or stored object" "$leaks" ""
}

conformance_main() {
    bed_setup || skip_all "the $BED_FLAVOR test bed did not start"
    export HOME=$T/home XDG_DATA_HOME=$T/data XDG_CONFIG_HOME=$T/config STEPOP_LOG_INTERVAL=200ms
    mkdir -p "$HOME" "$T/cwd"
    cd "$T/cwd" || exit 1
    bed_config
    mapfile -t CF_STEP_ARGS < <(bed_step_args)
    CF_APP=()
    type bed_app >/dev/null 2>&1 && mapfile -t CF_APP < <(bed_app)
    local c t0
    for c in cf_exit_codes cf_logs cf_inputs_outputs cf_ctrl_c cf_timeout_oom cf_cannot_start cf_refusals \
        cf_dry_run cf_detach cf_forged_handle cf_api_down cf_no_credentials; do
        t0=$SECONDS
        "$c"
        echo "# $c: $((SECONDS - t0)) s"
    done
    type bed_teardown >/dev/null 2>&1 && bed_teardown
    done_testing
}
