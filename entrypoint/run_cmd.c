/* `stepop run`: the ENTRYPOINT of step images. Takes a step from its manifest to a final status
 * (docs/protocol.md): starting -> checking_gpu -> fetching -> running -> uploading -> final. */
#include "io.h"
#include "passthru.h"
#include "preflight.h"
#include "reporter.h"
#include "supervise.h"

#include "../artifacts/store.h"
#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/fsutil.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/manifest.h"
#include "../runtime/status.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static const char usage_text[] =
    "usage: stepop run [--manifest URI] [-- CMD ARGS...]\n"
    "       stepop run --exec [--manifest URI] -- CMD ARGS...\n"
    "\n"
    "Runs one step inside its container as PID 1 would: reads the manifest (--manifest or\n"
    "STEPOP_MANIFEST), checks GPUs, fetches inputs, runs the command, ships logs and status,\n"
    "uploads outputs. The manifest's \"command\" is the step; without one, CMD is. With no manifest\n"
    "at all, `stepop run -- CMD` only supervises CMD (a plain init).\n"
    "\n"
    "--exec: CMD is the step whatever the manifest's \"command\" says; everything else (inputs,\n"
    "outputs, GPU preflight, logs, status) still comes from the manifest, which is required. For a\n"
    "platform that builds the command itself, e.g. Spark's driver entrypoint (the spark flavor).\n"
    "\n"
    "Exit code: the step's own (128+N when it died of signal N); when the step did not run:\n"
    "65 manifest_error, 66 input_error, 69 gpu_unavailable, 70 internal, 143 terminated;\n"
    "74 when the step exited 0 but an output could not be stored. See docs/protocol.md.\n";

/* Bytes of the step's output (and of stepop's diagnostics) held for a stdout or stderr that does
 * not keep up; past that the pass-through drops, the shipped log does not. */
#define PASSTHRU_BUFFER (1u << 20)

struct run_ctx {
    struct manifest m;
    struct reporter *rep;
    struct passthru *out, *err; /* stepop's stdout and stderr, never waited on */
    char workdir[PATH_MAX];
    int attempt;
};

/* stepop's own diagnostics while a run is reported: passed through and shipped. */
static void log_to_run(void *ctx, const char *line, size_t len)
{
    struct run_ctx *c = ctx;
    passthru_write(c->err, line, len);
    reporter_log(c->rep, line, len);
}

/* After the final status: passed through only. */
static void log_to_stderr(void *ctx, const char *line, size_t len)
{
    struct run_ctx *c = ctx;
    passthru_write(c->err, line, len);
}

static void on_output(void *ctx, int fd, const void *data, size_t n)
{
    struct run_ctx *c = ctx;
    passthru_write(fd == 1 ? c->out : c->err, data, n);
    reporter_log(c->rep, data, n);
}

static int64_t env_duration_or(const char *name, int64_t fallback)
{
    const char *v = getenv(name);
    int64_t ms;
    struct err e;
    if (!v || !*v)
        return fallback;
    if (units_parse_duration(v, &ms, &e) < 0) {
        log_warn("%s: %s; using the default", name, e.msg);
        return fallback;
    }
    return ms;
}

static int64_t env_size_or(const char *name, int64_t fallback)
{
    const char *v = getenv(name);
    int64_t bytes = 0;
    struct err e = { 0 };
    if (!v || !*v)
        return fallback;
    if (units_parse_size(v, &bytes, &e) < 0 || bytes <= 0) {
        log_warn("%s: %s; using the default", name, e.msg[0] ? e.msg : "expected a positive size");
        return fallback;
    }
    return bytes;
}

/* Plain init: no manifest, nothing fetched or reported; CMD inherits stdin/stdout/stderr. */
static int plain_init(char **argv)
{
    struct supervise_options o = { .argv = argv, .grace_ms = env_duration_or("STEPOP_GRACE_PERIOD", 30000) };
    struct supervise_result r;
    struct err e = { 0 };
    if (supervise_run(&o, &r, &e) < 0) {
        log_error("%s", e.msg);
        return EXIT_RUN_INTERNAL;
    }
    if (r.exec_errno)
        log_error("cannot run %s: %s", argv[0], strerror(r.exec_errno));
    return r.exit_code;
}

/* Writes a failed status for a run whose manifest could not be used, when its run_uri is known. */
static void report_manifest_error(const char *run_uri, const char *run_id, int attempt, const char *msg)
{
    struct err e = { 0 };
    if (!run_uri || store_check_uri(run_uri, &e) < 0 || !str_has_suffix(run_uri, "/"))
        return;
    struct run_status st;
    status_init(&st, run_id ? run_id : "", attempt);
    gethostname(st.host, sizeof st.host - 1);
    status_enter(&st, PHASE_STARTING);
    status_enter(&st, PHASE_FAILED);
    st.reason = REASON_MANIFEST_ERROR;
    str_copy(st.message, sizeof st.message, msg);
    cJSON *j = status_to_json(&st);
    char *text = json_print(j, 1);
    struct store *s;
    if (store_open(run_uri, &s, &e) == 0) {
        char *uri = uri_join(run_uri, "status.json");
        if (store_put_small(s, uri, text, strlen(text), &e) < 0)
            log_error("writing status.json: %s", e.msg);
        free(uri);
        store_close(s);
    }
    cJSON_free(text);
    cJSON_Delete(j);
}

static int load_manifest(const char *uri, int require_command, int attempt, struct manifest *m)
{
    struct err e = { 0 };
    char red[512];
    uri_redact(uri, red, sizeof red);
    struct store *s;
    char *text = NULL;
    size_t len = 0;
    if (store_open(uri, &s, &e) < 0) {
        log_error("manifest %s: %s", red, e.msg);
        return -1;
    }
    int rc = store_get_small(s, uri, 16u << 20, &text, &len, &e);
    store_close(s);
    if (rc < 0) {
        log_error("reading the manifest %s: %s", red, e.msg);
        return -1;
    }
    cJSON *root;
    if (json_parse(text, len, "manifest", &root, &e) < 0) {
        log_error("%s", e.msg);
        free(text);
        return -1;
    }
    free(text);
    rc = manifest_from_json(root, require_command, m, &e);
    if (rc < 0) {
        log_error("invalid manifest %s: %s", red, e.msg);
        char msg[1100];
        snprintf(msg, sizeof msg, "invalid manifest: %s", e.msg);
        report_manifest_error(json_str(root, "run_uri"), json_str(root, "run_id"), attempt, msg);
        manifest_free(m);
    }
    cJSON_Delete(root);
    return rc;
}

/* STEPOP_ATTEMPT_FROM_STATUS=1: the platform starts the step again by itself (a Kubernetes Job's
 * backoffLimit makes a new pod with the same environment), so STEPOP_ATTEMPT is only the first
 * attempt's number. When the run's status.json was written by an entrypoint (any phase after
 * pending) for this attempt or a later one, this start is the next attempt: its logs go to
 * logs/<attempt>/ instead of over the last attempt's. Without a readable status the given
 * attempt stands. */
static int attempt_from_status(const struct manifest *m, int attempt)
{
    struct err e = { 0 };
    struct store *s;
    char *text = NULL;
    size_t len = 0;
    if (store_open(m->run_uri, &s, &e) < 0)
        return attempt;
    char *uri = uri_join(m->run_uri, "status.json");
    int rc = store_get_small(s, uri, 1u << 20, &text, &len, &e);
    free(uri);
    store_close(s);
    if (rc < 0) {
        log_info("STEPOP_ATTEMPT_FROM_STATUS: no status.json to count from (%s); attempt %d", e.msg, attempt);
        return attempt;
    }
    cJSON *root;
    struct run_status st;
    memset(&st, 0, sizeof st);
    rc = json_parse(text, len, "status.json", &root, &e);
    free(text);
    if (rc == 0) {
        rc = status_from_json(root, &st, &e);
        cJSON_Delete(root);
    }
    if (rc < 0) {
        log_info("STEPOP_ATTEMPT_FROM_STATUS: %s; attempt %d", e.msg, attempt);
        status_free(&st);
        return attempt;
    }
    if (strcmp(st.run_id, m->run_id) == 0 && st.phase != PHASE_PENDING && st.attempt >= attempt && st.attempt < 100000) {
        log_info("attempt %d: the run's status shows attempt %d (%s), so the platform started the step again",
                 st.attempt + 1, st.attempt, status_phase_name(st.phase));
        attempt = st.attempt + 1;
    }
    status_free(&st);
    return attempt;
}

/* The step's environment: ours less env_drop, then the manifest's env, then stepop's own variables. */
static char **build_env(const struct run_ctx *c)
{
    const struct manifest *m = &c->m;
    size_t n = 0;
    while (environ[n])
        n++;
    size_t cap = n + (size_t)m->env_count + (size_t)m->input_count + (size_t)m->output_count + 8;
    char **env = xcalloc(cap, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!manifest_env_dropped(m, environ[i]))
            env[k++] = xstrdup(environ[i]);
    for (int i = 0; i < m->env_count; i++)
        env[k++] = xasprintf("%s=%s", m->env_names[i], m->env_values[i]);
    env[k++] = xasprintf("STEPOP_RUN_ID=%s", m->run_id);
    env[k++] = xasprintf("STEPOP_RUN_URI=%s", m->run_uri);
    env[k++] = xasprintf("STEPOP_ATTEMPT=%d", c->attempt);
    for (int i = 0; i < m->input_count; i++) {
        char *name = manifest_env_name("STEPOP_INPUT_", m->inputs[i].name);
        char *path = io_resolve(c->workdir, m->inputs[i].path);
        env[k++] = xasprintf("%s=%s", name, path);
        free(name);
        free(path);
    }
    for (int i = 0; i < m->output_count; i++) {
        char *name = manifest_env_name("STEPOP_OUTPUT_", m->outputs[i].name);
        char *path = io_resolve(c->workdir, m->outputs[i].path);
        env[k++] = xasprintf("%s=%s", name, path);
        free(name);
        free(path);
    }
    /* Later definitions win: drop earlier entries with the same name. */
    for (size_t i = 0; i < k; i++) {
        size_t len = strcspn(env[i], "=");
        for (size_t j = i + 1; j < k; j++)
            if (strncmp(env[i], env[j], len + 1) == 0) {
                free(env[i]);
                env[i] = NULL;
                break;
            }
    }
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (env[i])
            env[w++] = env[i];
    env[w] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (char **p = env; *p; p++)
        free(*p);
    free(env);
}

static void set_final(struct run_ctx *c, enum run_phase phase, enum run_reason reason, int system_kind,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void set_final(struct run_ctx *c, enum run_phase phase, enum run_reason reason, int system_kind,
                      const char *fmt, ...)
{
    struct run_status *st = reporter_lock(c->rep);
    status_enter(st, phase);
    st->reason = reason;
    st->system_kind = system_kind;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(st->message, sizeof st->message, fmt, ap);
        va_end(ap);
    }
    reporter_unlock(c->rep);
}

static void enter(struct run_ctx *c, enum run_phase phase, const char *message)
{
    struct run_status *st = reporter_lock(c->rep);
    status_enter(st, phase);
    snprintf(st->message, sizeof st->message, "%s", message ? message : "");
    reporter_unlock(c->rep);
}

static int finish(struct run_ctx *c, int code)
{
    struct err e = { 0 };
    log_set_sink(log_to_stderr, c);
    int64_t deadline = time_mono_ms() + env_duration_or("STEPOP_FINAL_FLUSH_TIMEOUT", 60000);
    if (reporter_finish(c->rep, deadline, &e) < 0)
        log_error("the final status and logs may be incomplete: %s", e.msg);
    /* What stdout and stderr have not taken by the deadline is dropped: the shipped log has it,
     * and a blocked stream must not keep the container (and its GPUs) alive. */
    int64_t dropped = passthru_close(c->out, deadline);
    if (dropped > 0)
        log_warn("%lld bytes of output were not passed through to stdout, which was blocked; the shipped log "
                 "(stepop logs RUN) has every byte",
                 (long long)dropped);
    log_set_sink(NULL, NULL);
    passthru_close(c->err, deadline);
    manifest_free(&c->m);
    return code;
}

static int run_step(struct run_ctx *c, char **argv)
{
    const struct manifest *m = &c->m;
    struct err e = { 0 };

    enter(c, PHASE_CHECKING_GPU, NULL);
    char classification[64] = "";
    cJSON *gpu_summary = NULL;
    int pf = preflight_gpu(m, &gpu_summary, classification, sizeof classification, &e);
    if (gpu_summary) {
        struct run_status *st = reporter_lock(c->rep);
        cJSON_Delete(st->gpu);
        st->gpu = gpu_summary;
        reporter_unlock(c->rep);
    }
    if (pf < 0) {
        log_error("GPU preflight failed: %s", e.msg);
        set_final(c, PHASE_FAILED, REASON_GPU_UNAVAILABLE, 1, "%s", e.msg);
        return finish(c, EXIT_RUN_GPU);
    }

    if (supervise_term_requested()) {
        set_final(c, PHASE_TERMINATED, REASON_TERMINATED, 1, "terminated before the step started");
        return finish(c, EXIT_RUN_TERMINATED);
    }
    enter(c, PHASE_FETCHING, NULL);
    int fr = io_fetch_inputs(m, c->workdir, supervise_cancel_flag(), &e);
    if (fr < 0 && (e.kind == ERR_CANCELLED || supervise_term_requested())) {
        set_final(c, PHASE_TERMINATED, REASON_TERMINATED, 1, "terminated while fetching inputs");
        return finish(c, EXIT_RUN_TERMINATED);
    }
    if (fr < 0) {
        int system = e.transient || e.kind == ERR_NETWORK || e.http_status >= 500;
        log_error("%s", e.msg);
        set_final(c, PHASE_FAILED, REASON_INPUT_ERROR, system, "%s", e.msg);
        return finish(c, EXIT_RUN_INPUT);
    }
    unsigned char *created = NULL;
    if (io_prepare_outputs(m, c->workdir, &created, &e) < 0) {
        free(created);
        log_error("%s", e.msg);
        set_final(c, PHASE_FAILED, REASON_INTERNAL, 0, "%s", e.msg);
        return finish(c, EXIT_RUN_INTERNAL);
    }
    if (supervise_term_requested()) {
        free(created);
        set_final(c, PHASE_TERMINATED, REASON_TERMINATED, 1, "terminated before the step started");
        return finish(c, EXIT_RUN_TERMINATED);
    }

    enter(c, PHASE_RUNNING, NULL);
    reporter_set_heartbeat(c->rep, m->heartbeat_ms);
    char **env = build_env(c);
    struct supervise_options so = { .argv = argv, .envp = env, .workdir = c->workdir, .capture = 1,
                                    .on_output = on_output, .ctx = c, .timeout_ms = m->timeout_ms,
                                    .grace_ms = m->grace_ms };
    struct supervise_result r;
    int sr = supervise_run(&so, &r, &e);
    free_env(env);
    reporter_set_heartbeat(c->rep, 0);
    if (sr < 0) {
        free(created);
        log_error("%s", e.msg);
        set_final(c, PHASE_FAILED, REASON_INTERNAL, 0, "%s", e.msg);
        return finish(c, EXIT_RUN_INTERNAL);
    }
    {
        struct run_status *st = reporter_lock(c->rep);
        st->exit_code = r.exit_code;
        st->signal = r.signal;
        reporter_unlock(c->rep);
    }
    char how[160];
    char dur[32];
    units_format_duration(r.elapsed_ms, dur, sizeof dur);
    if (r.exec_errno)
        snprintf(how, sizeof how, "cannot run %s: %s", argv[0], strerror(r.exec_errno));
    else if (r.signal)
        snprintf(how, sizeof how, "the step was killed by signal %d (%s) after %s", r.signal, strsignal(r.signal), dur);
    else
        snprintf(how, sizeof how, "the step exited with code %d after %s", r.exit_code, dur);
    log_info("%s", how);

    int step_ok = r.exit_code == 0 && !r.exec_errno && !r.terminated && !r.timed_out;
    cJSON *index = NULL;
    int upload_rc = 0;
    struct err ue = { 0 };
    if (m->output_count > 0) {
        enter(c, PHASE_UPLOADING, NULL);
        /* Outputs are stored whatever the exit code, so a checkpoint written before a failure or a
         * SIGTERM survives; only a successful run gets outputs.json, which marks them complete. */
        /* One store for the outputs under the run and outputs.json; closing it makes them durable
         * (the file store syncs the last directory then) before the final status is written. */
        struct store *run_store = NULL;
        struct err se = { 0 };
        if (store_open(m->run_uri, &run_store, &se) < 0)
            run_store = NULL; /* each output opens its own store, and reports its own error */
        upload_rc = io_upload_outputs(m, c->workdir, created, run_store, &index, &ue);
        if (step_ok && upload_rc == 0) {
            char *text = json_print(index, 1);
            char *uri = uri_join(m->run_uri, "outputs.json");
            upload_rc = run_store ? store_put_small(run_store, uri, text, strlen(text), &ue)
                                  : err_set(&ue, se.kind, "%s", se.msg);
            if (upload_rc < 0)
                err_prefix(&ue, "outputs.json: ");
            free(uri);
            cJSON_free(text);
        }
        /* The last log chunk need not wait for outputs.json to be durable, only the final status
         * does: on ext4 the two commits become one. */
        reporter_ship_logs_now(c->rep);
        store_close(run_store);
        cJSON_Delete(index);
    }
    free(created);

    if (r.timed_out)
        set_final(c, PHASE_FAILED, REASON_TIMEOUT, 0, "the step ran past its timeout of %s; %s",
                  (units_format_duration(m->timeout_ms, dur, sizeof dur), dur), how);
    else if (r.terminated)
        set_final(c, PHASE_TERMINATED, REASON_TERMINATED, 1, "terminated by SIGTERM; %s", how);
    else if (r.oom_killed) {
        char limit[64] = "";
        if (m->memory)
            units_format_size(m->memory, limit, sizeof limit);
        set_final(c, PHASE_FAILED, REASON_OOM_KILLED, 0,
                  "the step was killed by the kernel's OOM killer: it used more memory than the limit%s%s%s "
                  "(raise resources.memory or reduce the step's memory use)",
                  limit[0] ? " (" : "", limit, limit[0] ? ")" : "");
    } else if (!step_ok)
        set_final(c, PHASE_FAILED, REASON_USER_ERROR, 0, "%s", how);
    else if (upload_rc < 0) {
        log_error("%s", ue.msg);
        set_final(c, PHASE_FAILED, REASON_UPLOAD_ERROR, 0, "%s", ue.msg);
        return finish(c, EXIT_RUN_UPLOAD);
    } else
        set_final(c, PHASE_SUCCEEDED, REASON_NONE, 0, "%s", how);
    return finish(c, r.exit_code);
}

enum { OPT_MANIFEST = 1, OPT_EXEC };
static const struct cli_option run_opts[] = { { "manifest", 'm', 1, OPT_MANIFEST }, { "exec", 0, 0, OPT_EXEC }, { 0 } };
const struct cli_option *const run_cli_options = run_opts;

int cmd_run(int argc, char **argv)
{
    struct cli cl;
    struct err e = { 0 };
    const char *v, *manifest_uri = NULL;
    int id, exec_mode = 0;
    cli_init(&cl, "run", run_opts, argc - 1, argv + 1);
    while ((id = cli_next(&cl, &v, &e)) > 0) {
        if (id == OPT_MANIFEST)
            manifest_uri = v;
        else
            exec_mode = 1;
    }
    if (id == CLI_HELP) {
        fputs(usage_text, stdout);
        cli_free(&cl);
        return EXIT_OK;
    }
    if (id < 0 || cl.pos_count) {
        log_error("%s", id < 0 ? e.msg : "run: unexpected argument (put the step's command after --)");
        cli_free(&cl);
        return EXIT_USAGE;
    }
    char **cmd = cl.rest_count ? cl.rest : NULL;
    cli_free(&cl);
    if (!manifest_uri)
        manifest_uri = getenv("STEPOP_MANIFEST");
    if (manifest_uri && !*manifest_uri)
        manifest_uri = NULL;
    if (exec_mode && (!cmd || !manifest_uri)) {
        log_error("run --exec: %s", !cmd ? "the step's command goes after -- (stepop run --exec -- CMD ARGS...)"
                                         : "needs a manifest (--manifest or STEPOP_MANIFEST)");
        return EXIT_USAGE;
    }
    if (supervise_init(&e) < 0) {
        log_error("%s", e.msg);
        return EXIT_RUN_INTERNAL;
    }
    if (!manifest_uri) {
        if (!cmd) {
            log_error("run: no manifest (--manifest or STEPOP_MANIFEST) and no command after --");
            return EXIT_USAGE;
        }
        return plain_init(cmd);
    }
    if (http_global_init(&e) < 0) {
        log_error("%s", e.msg);
        return EXIT_RUN_INTERNAL;
    }
    store_http_set_bearer_scope(manifest_uri); /* the run's store, which holds the manifest */
    struct run_ctx c = { .attempt = 1 };
    const char *att = getenv("STEPOP_ATTEMPT");
    if (att && *att) {
        char *end;
        long a = strtol(att, &end, 10);
        if (*end || a < 1 || a > 100000) {
            log_error("STEPOP_ATTEMPT: expected a positive number, got \"%s\"", att);
            return EXIT_USAGE;
        }
        c.attempt = (int)a;
    }
    char *mu = uri_from_arg(manifest_uri);
    int lr = load_manifest(mu, cmd == NULL, c.attempt, &c.m);
    free(mu);
    if (lr < 0)
        return EXIT_RUN_MANIFEST;
    if (env_flag("STEPOP_ATTEMPT_FROM_STATUS"))
        c.attempt = attempt_from_status(&c.m, c.attempt);
    if (c.m.argv && cmd && !exec_mode)
        log_info("the manifest has a command; ignoring the one after -- (--exec runs that one instead)");
    char **step_argv = exec_mode || !c.m.argv ? cmd : c.m.argv;

    struct run_status st;
    status_init(&st, c.m.run_id, c.attempt);
    gethostname(st.host, sizeof st.host - 1);
    status_enter(&st, PHASE_STARTING);
    struct reporter_options ro = { .run_uri = c.m.run_uri, .attempt = c.attempt,
                                   .ship_interval_ms = env_duration_or("STEPOP_LOG_INTERVAL", 1000),
                                   .spool_max = env_size_or("STEPOP_LOG_SPOOL_MAX", (int64_t)1 << 30),
                                   .callback_url = getenv("STEPOP_CALLBACK_URL") };
    if (ro.callback_url && !*ro.callback_url)
        ro.callback_url = NULL;
    if (passthru_open(1, PASSTHRU_BUFFER, &c.out, &e) < 0 || passthru_open(2, PASSTHRU_BUFFER, &c.err, &e) < 0) {
        log_error("%s", e.msg);
        if (c.out)
            passthru_close(c.out, 0);
        manifest_free(&c.m);
        return EXIT_RUN_INTERNAL;
    }
    ro.warn = log_to_stderr;
    ro.warn_ctx = &c;
    if (reporter_start(&ro, &st, &c.rep, &e) < 0) {
        log_error("%s", e.msg);
        passthru_close(c.out, 0);
        passthru_close(c.err, 0);
        manifest_free(&c.m);
        return EXIT_RUN_INTERNAL;
    }
    log_set_sink(log_to_run, &c);

    const char *wd = c.m.workdir ? c.m.workdir : ".";
    char *abs = wd[0] == '/' ? xstrdup(wd) : NULL;
    if (!abs) {
        char cwd[PATH_MAX];
        abs = getcwd(cwd, sizeof cwd) ? xasprintf("%s/%s", cwd, wd) : xstrdup(wd);
    }
    int wr = fs_mkdir_p(abs, &e);
    if (wr == 0 && !realpath(abs, c.workdir))
        wr = err_set(&e, ERR_IO, "workdir %s: %s", abs, strerror(errno));
    free(abs);
    if (wr < 0) {
        log_error("%s", e.msg);
        set_final(&c, PHASE_FAILED, REASON_INTERNAL, 0, "%s", e.msg);
        return finish(&c, EXIT_RUN_INTERNAL);
    }
    log_info("run %s attempt %d: %s", c.m.run_id, c.attempt, c.m.step ? c.m.step : step_argv[0]);
    return run_step(&c, step_argv);
}
