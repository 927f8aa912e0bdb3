#!/usr/bin/env bash
# The kubernetes flavor's Job (flavors/kubernetes/body.c) against a real API server and Job
# controller, on the test bed (tests/testbeds/kubernetes), without the flavor's API client: the
# API server accepts every shape of Job the settings make (dry run), and real Jobs run on the
# test kubelet: inject mode (an init container runs `stepop install` from an image of glibc and
# the static binary alone, into an image without stepop), /dev/shm of the size set, and retries
# that count as the next attempt. Skipped until build.sh has filled the cache (tests/lib.sh
# start_kbed).
. "$(dirname "$0")/../lib.sh"

JOB=$ROOT/build/tests/tools/kube_job
[ -x "$JOB" ] || skip_all "build/tests/tools/kube_job is not built (make test builds it)"

start_kbed 1
K=$KBED_KUBECTL

# Refused before anything reaches the cluster.
store=$T/store
mkdir -p "$store/runs"
manifest "$T/file.json" "file://$store/runs/r0" '"image":"busybox","command":["true"]'
echo '{}' >"$T/none.json"
expect_rc 1 "a file store no volume mounts is refused" "$JOB" "$T/file.json" "$T/none.json"
err_has "is a path on this machine, which a pod cannot reach" "saying why"

static=$ROOT/build/stepop-static
# The step's image: busybox and glibc (for an injected static stepop), no stepop.
BARE=localhost/stepop-test/kjob-bare:$({ cat /bin/busybox; [ -x "$static" ] && cat "$static"; } | sha256sum | cut -c1-16)
if ! podman_cli image exists "$BARE"; then
    if [ -x "$static" ]; then podman_rootfs "$T/bare" "$static"; else podman_rootfs "$T/bare"; fi
    tar -C "$T/bare" -c . | podman_cli import - "$BARE" >"$T/import.log" 2>&1 || { not_ok "the step image builds"; diag <"$T/import.log"; }
fi
# The inject image: glibc and /stepop, nothing else (no shell, no cp), as a distroless base.
INJ=""
if [ -x "$static" ]; then
    INJ=localhost/stepop-test/kjob-inject:$(sha256sum "$static" | cut -c1-16)
    if ! podman_cli image exists "$INJ"; then
        mkdir -p "$T/inj"
        cp "$static" "$T/inj/stepop"
        for f in $(ldd "$static" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u); do
            mkdir -p "$T/inj$(dirname "$f")"
            cp -L "$f" "$T/inj$f"
        done
        tar -C "$T/inj" -c . | podman_cli import - "$INJ" >"$T/import.log" 2>&1 || { not_ok "the inject image builds"; diag <"$T/import.log"; }
    fi
fi

# ---- the API server accepts what the settings make ----
manifest "$T/s3.json" "s3://bucket/runs/01J9ZQK8V3N4M5P6Q7R8S9T0AB" \
    '"image":"registry.example.com/train:1","command":["python","train.py"],"resources":{"cpu":0.5,"memory":"3GiB","gpus":2},"timeout":"1h","grace_period":"45s"'
accepts() { # DESC SETTINGS [MANIFEST]
    printf '%s\n' "$2" >"$T/settings.json"
    if ! "$JOB" "${3:-$T/s3.json}" "$T/settings.json" >"$T/job.json" 2>"$T/err"; then
        not_ok "$1 (kube_job refused it)"
        diag <"$T/err"
        return
    fi
    check "$1" "$K" create --dry-run=server -f "$T/job.json"
}
accepts "a plain Job" '{}'
accepts "GPUs on amd.com/gpu, shm, retries, TTL, pull policy" \
    '{"gpu_resource":"amd.com/gpu","retries":3,"ttl_seconds_after_finished":60,"image_pull_policy":"IfNotPresent","shm_size":"2g"}'
accepts "inject, host network, names, every pod setting" \
    '{"inject":true,"inject_image":"r/stepop:1","host_network":true,"service_account_name":"default",
      "priority_class_name":"high","runtime_class_name":"nvidia",
      "pod_settings":{"node_selectors":{"gpu":"h100"},
        "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"gpu","operator":"In","values":["h100"]}]}]}}},
        "tolerations":[{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"}],
        "labels":{"team":"ml"},"annotations":{"note":"any text"},
        "volumes":[{"name":"data","persistentVolumeClaim":{"claimName":"data"}},{"name":"cfg","configMap":{"name":"cfg"}},{"name":"sec","secret":{"secretName":"s"}}],
        "volume_mounts":[{"name":"data","mountPath":"/data"},{"name":"cfg","mountPath":"/etc/cfg","readOnly":true},{"name":"sec","mountPath":"/sec"}],
        "host_ipc":true,"scheduler_name":"volcano","image_pull_secrets":["regcred"],
        "env":[{"name":"A","value":"1"},{"name":"T","valueFrom":{"secretKeyRef":{"name":"t","key":"k"}}}],
        "env_from":[{"configMapRef":{"name":"cm"}}],"security_context":{"runAsUser":1000,"fsGroup":2000},
        "resources":{"limits":{"ephemeral-storage":"10Gi"},"requests":{"ephemeral-storage":"1Gi"}}}}'
manifest "$T/odd.json" "s3://bucket/runs/My_Run.1" '"image":"busybox","command":["true"]'
accepts "a run id that is no DNS-1123 label (a digest name)" '{}' "$T/odd.json"
check "the digest name" grep -q '"name":[[:space:]]*"stepop-[0-9a-f]\{16\}"' "$T/job.json"

# ---- real Jobs on the test kubelet ----
wait_job() { # NAME: prints the Job's final conditions (Complete, Failed) or "timeout" after 120 s
    local i c
    for i in $(seq 240); do
        c=$("$K" get job "$1" -o jsonpath='{range .status.conditions[*]}{.type}{" "}{end}' 2>/dev/null)
        case $c in *Complete* | *Failed*) echo "$c"; return 0 ;; esac
        sleep 0.5
    done
    echo timeout
}
run_job() { # RUN_ID RETRIES COMMAND_JSON: a Job on a file store mounted through hostPath
    mkdir -p "$store/runs/$1"
    manifest "$store/runs/$1/manifest.json" "file://$store/runs/$1" "\"image\":\"$BARE\",\"command\":$3"
    printf '{"run_id":"%s","attempt":1,"phase":"pending"}\n' "$1" >"$store/runs/$1/status.json"
    printf '{"inject":true,"inject_image":"%s","image_pull_policy":"Never","retries":%s,"shm_size":"64Mi",
      "pod_settings":{"volumes":[{"name":"store","hostPath":{"path":"%s"}}],"volume_mounts":[{"name":"store","mountPath":"%s"}]}}\n' \
        "$INJ" "$2" "$store" "$store" >"$T/settings.json"
    "$JOB" "$store/runs/$1/manifest.json" "$T/settings.json" >"$T/$1.json" 2>"$T/err" && "$K" create -f "$T/$1.json" >"$T/out" 2>>"$T/err"
}
if [ -z "$INJ" ]; then
    ok "# SKIP real Jobs with inject: build/stepop-static is not built (make static)"
else
    if run_job r-ok 0 '["sh","-c","echo hello from attempt $STEPOP_ATTEMPT; df -k /dev/shm | tail -1"]'; then
        is_eq "inject: the Job completes" "$(wait_job stepop-r-ok)" "Complete "
        is_eq "the entrypoint's status: succeeded" "$(jq_py "$store/runs/r-ok/status.json" "d['phase']")" succeeded
        check "the step ran the injected stepop, attempt 1" grep -q "hello from attempt 1" "$store/runs/r-ok/logs/1/00000000.log"
        check "/dev/shm has the size set (64Mi)" grep -Eq "^shm +65536 " "$store/runs/r-ok/logs/1/00000000.log"
        reason=$("$K" get pods -l job-name=stepop-r-ok -o jsonpath='{.items[0].status.initContainerStatuses[0].state.terminated.reason}')
        is_eq "the init container stepop-install completed" "$reason" Completed
    else
        not_ok "the inject Job is created"
        diag <"$T/err"
    fi
    if run_job r-retry 1 '["sh","-c","echo attempt $STEPOP_ATTEMPT; exit 3"]'; then
        is_eq "retries 1: a step that fails twice fails the Job" "$(wait_job stepop-r-retry)" "Failed "
        is_eq "two pods ran" "$("$K" get pods -l job-name=stepop-r-retry -o name | wc -l)" 2
        is_eq "the final status is attempt 2's" "$(jq_py "$store/runs/r-retry/status.json" "d['attempt']")" 2
        check "attempt 1's logs stay" grep -q "attempt 1" "$store/runs/r-retry/logs/1/00000000.log"
        check "attempt 2's logs are beside them" grep -q "attempt 2" "$store/runs/r-retry/logs/2/00000000.log"
    else
        not_ok "the retries Job is created"
        diag <"$T/err"
    fi
fi
done_testing
