#include "follow.h"

#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* Pauses between looks at the run: the first after a phase change, and the steady one. */
#define FOLLOW_FIRST_PAUSE_MS 20
#define FOLLOW_PAUSE_MS 400

static volatile sig_atomic_t interrupts, unhandled_interrupt;

static void on_interrupt(int sig)
{
    (void)sig;
    interrupts++;
    unhandled_interrupt = 1;
}

int follow_drain_logs(struct store *s, const char *run_uri, struct log_cursor *cur, FILE *out, struct err *e)
{
    for (;;) {
        char name[64];
        snprintf(name, sizeof name, "logs/%d/%08d.log", cur->attempt, cur->seq);
        char *uri = uri_join(run_uri, name);
        char *data;
        size_t len;
        /* A chunk is at most 1 MiB and is written whole, so it is read whole: a failed read is
         * retried from its start, never half-printed. */
        int rc = store_get_small(s, uri, 16u << 20, &data, &len, e);
        free(uri);
        if (rc < 0)
            return e->kind == ERR_NOT_FOUND ? 0 : -1;
        if (out) {
            fwrite(data, 1, len, out);
            fflush(out);
        }
        free(data);
        cur->seq++;
    }
}

int follow_read_json(struct store *s, const char *run_uri, const char *name, cJSON **out, struct err *e)
{
    char *uri = uri_join(run_uri, name);
    char *text;
    size_t len;
    int rc = store_get_small(s, uri, 4u << 20, &text, &len, e);
    free(uri);
    if (rc < 0)
        return -1;
    rc = json_parse(text, len, name, out, e);
    free(text);
    return rc;
}

int follow_read_status(struct store *s, const char *run_uri, struct run_status *st, struct err *e)
{
    cJSON *j;
    int rc = follow_read_json(s, run_uri, "status.json", &j, e);
    if (rc < 0)
        return -1;
    rc = status_from_json(j, st, e);
    cJSON_Delete(j);
    return rc;
}

int follow_write_status(struct store *s, const char *run_uri, const struct run_status *st, struct err *e)
{
    cJSON *j = status_to_json(st);
    char *text = json_print(j, 1);
    cJSON_Delete(j);
    char *uri = uri_join(run_uri, "status.json");
    int rc = store_put_small(s, uri, text, strlen(text), e);
    free(uri);
    cJSON_free(text);
    return rc;
}

static void print_phase(const struct run_status *st)
{
    char extra[600] = "";
    if (st->phase == PHASE_RUNNING && st->host[0])
        snprintf(extra, sizeof extra, " on %s", st->host);
    else if (st->message[0] && status_phase_is_final(st->phase))
        snprintf(extra, sizeof extra, ": %.500s", st->message);
    log_info("[%s] %s%s", st->run_id, status_phase_name(st->phase), extra);
}

/* The job ended but status.json has no final phase: fill it in from the flavor's report. */
static void fill_in(struct follow_result *r, const struct remote_state *rs, int have, const char *run_id)
{
    struct run_status *st = &r->status;
    if (!have) {
        char id[sizeof st->run_id];
        str_copy(id, sizeof id, run_id);
        status_init(st, id, 1);
    }
    enum run_phase phase = PHASE_FAILED;
    if (r->cannot_start) {
        st->reason = REASON_INTERNAL;
        snprintf(st->message, sizeof st->message, "the job could not start: %.460s", rs->message);
    } else if (rs->oom_killed) {
        st->reason = REASON_OOM_KILLED;
        snprintf(st->message, sizeof st->message,
                 "the job was killed for exceeding its memory limit before stepop could report (%.400s)", rs->message);
    } else if (rs->reason == REASON_TIMEOUT) {
        st->reason = REASON_TIMEOUT;
        snprintf(st->message, sizeof st->message,
                 "the platform stopped the job at its deadline before stepop could report (%.400s)", rs->message);
    } else if (rs->reason == REASON_PREEMPTED) {
        phase = PHASE_PREEMPTED;
        st->reason = REASON_PREEMPTED;
        snprintf(st->message, sizeof st->message, "the job was preempted before stepop could report (%.420s)",
                 rs->message);
    } else if (r->cancelled) {
        phase = PHASE_TERMINATED;
        st->reason = REASON_TERMINATED;
        snprintf(st->message, sizeof st->message, "cancelled; the job ended without a final status (%.400s)",
                 rs->message);
    } else {
        st->reason = REASON_INTERNAL;
        snprintf(st->message, sizeof st->message, "the job ended without a final status (%.450s)", rs->message);
    }
    st->system_kind = 1;
    if (rs->exit_code >= 0) {
        st->exit_code = rs->exit_code;
        if (rs->exit_code > 128 && rs->exit_code < 160)
            st->signal = rs->exit_code - 128;
    }
    status_enter(st, phase);
    r->lost = 1;
}

int follow_run(const struct follow_options *o, struct follow_result *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    struct store *s;
    if (store_open(o->run_uri, &s, e) < 0)
        return -1;
    struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
    sigemptyset(&sa.sa_mask);
    if (o->handle_interrupts) {
        interrupts = unhandled_interrupt = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    struct log_cursor cur = { .attempt = 1, .seq = 0 };
    enum run_phase last = PHASE_COUNT;
    int64_t start = time_mono_ms(), next_poll = 0, kill_at = 0, last_warn = 0;
    /* Short steps end within a moment of a phase change: look again soon after each change, then
     * back off to the steady pace (a status read is one small GET). */
    int64_t pause_ms = FOLLOW_FIRST_PAUSE_MS;
    int seen_interrupts = 0, rc = 0, exited_polls = 0;
    /* The last final status read is of an attempt the platform is running again. */
    int restarting = 0, restart_announced = 0;
    struct remote_state rs = { 0 };
    for (;;) {
        struct err se = { 0 };
        struct run_status st;
        int have = follow_read_status(s, o->run_uri, &st, &se) == 0;
        if (!have && se.kind != ERR_NOT_FOUND && time_mono_ms() - last_warn > 30000) {
            log_warn("reading status.json: %s", se.msg);
            last_warn = time_mono_ms();
        }
        if (have) {
            if (st.attempt > cur.attempt) {
                /* A new attempt: finish the old one's logs first. */
                follow_drain_logs(s, o->run_uri, &cur, o->log_out, &se);
                cur.attempt = st.attempt;
                cur.seq = 0;
            }
        }
        /* Logs before the phase they led to: the entrypoint ships every chunk before it writes a
         * status, so what was printed before a phase change (the verdict above all) is readable
         * by now and comes first. */
        if (o->log_out && follow_drain_logs(s, o->run_uri, &cur, o->log_out, &se) < 0 &&
            time_mono_ms() - last_warn > 30000) {
            log_warn("reading logs: %s", se.msg);
            last_warn = time_mono_ms();
        }
        if (have && st.phase != last) {
            if (o->print_phases)
                print_phase(&st);
            pause_ms = FOLLOW_FIRST_PAUSE_MS;
            last = st.phase;
        }
        if (have && status_phase_is_final(st.phase)) {
            /* A failed attempt need not be the run's last: a platform that restarts the step
             * itself (Kubernetes backoffLimit, SageMaker spot) still runs the job, and the next
             * attempt's status follows. Only the flavor knows; ask it (at the poll pace). */
            int64_t t = time_mono_ms();
            if (st.phase != PHASE_SUCCEEDED && o->flavor && o->flavor->may_restart &&
                o->flavor->may_restart(o->settings) && !r->cancelled && t >= next_poll) {
                next_poll = t + 1000;
                struct err pe = { 0 };
                restarting = o->flavor->poll(o->handle, o->settings, &rs, &pe) == 0 &&
                             (rs.phase == REMOTE_PENDING || rs.phase == REMOTE_RUNNING);
                if (restarting && restart_announced < st.attempt) {
                    log_info("[%s] attempt %d ended; the platform runs the step again (%s)", st.run_id, st.attempt,
                             rs.message[0] ? rs.message : "its job is still active");
                    restart_announced = st.attempt;
                }
            }
            if (!restarting || r->cancelled || st.phase == PHASE_SUCCEEDED) {
                status_free(&r->status);
                r->status = st;
                r->have_status = 1;
                break;
            }
            status_free(&st);
            have = 0;
        } else if (have) {
            restarting = 0;
        }
        int64_t now = time_mono_ms();
        if (o->flavor && now >= next_poll) {
            next_poll = now + 1000;
            struct err pe = { 0 };
            /* Once the job has exited, its first report stands (a second look may know less). */
            if (exited_polls == 0 && o->flavor->poll(o->handle, o->settings, &rs, &pe) < 0) {
                if (now - last_warn > 30000) {
                    log_warn("asking the flavor about the job: %s", pe.msg);
                    last_warn = now;
                }
            } else if (rs.phase == REMOTE_CANNOT_START && !r->cancelled) {
                log_error("the job cannot start: %s; cancelling", rs.message);
                o->flavor->cancel(o->handle, o->settings, 0, &se);
                r->cannot_start = 1;
                if (have) {
                    status_free(&r->status);
                    r->status = st;
                    have = 0;
                }
                char *id = uri_basename(o->run_uri);
                fill_in(r, &rs, r->status.run_id[0] != 0, r->status.run_id[0] ? r->status.run_id : id);
                free(id);
                r->lost = 0;
                r->have_status = 1;
                struct err we = { 0 };
                if (follow_write_status(s, o->run_uri, &r->status, &we) < 0)
                    log_warn("recording the flavor's report in status.json: %s", we.msg);
                break;
            } else if (rs.phase == REMOTE_EXITED || rs.phase == REMOTE_GONE) {
                /* Give a final status written just before the exit a moment to be read. */
                if (++exited_polls >= 3) {
                    if (have) {
                        status_free(&r->status);
                        r->status = st;
                        have = 0;
                    }
                    if (o->log_out)
                        follow_drain_logs(s, o->run_uri, &cur, o->log_out, &se);
                    char *id = uri_basename(o->run_uri);
                    fill_in(r, &rs, r->status.run_id[0] != 0, r->status.run_id[0] ? r->status.run_id : id);
                    free(id);
                    r->have_status = 1;
                    struct err we = { 0 };
                    if (follow_write_status(s, o->run_uri, &r->status, &we) < 0)
                        log_warn("recording the flavor's report in status.json: %s", we.msg);
                    log_warn("%s", r->status.message);
                    break;
                }
            }
        }
        if (have)
            status_free(&st);
        if (o->handle_interrupts && interrupts > seen_interrupts) {
            unhandled_interrupt = 0;
            seen_interrupts = (int)interrupts;
            if (seen_interrupts >= 2) {
                r->detached = 1;
                log_info("detached; the run goes on (stepop status / stepop logs -f / stepop cancel)");
                break;
            }
            if (o->flavor) {
                log_info("cancelling: the step gets SIGTERM, then SIGKILL after %llds (Ctrl-C again to detach)",
                         (long long)(o->grace_ms / 1000));
                struct err ce = { 0 };
                if (o->flavor->cancel(o->handle, o->settings, o->grace_ms, &ce) < 0)
                    log_error("cancelling: %s", ce.msg);
                r->cancelled = 1;
                kill_at = now + o->grace_ms + 90000;
            } else {
                r->detached = 1;
                break;
            }
        }
        if (o->flavor && !r->cancelled) {
            int not_started = !restarting && (!have || last == PHASE_PENDING || last == PHASE_COUNT);
            if (o->pending_timeout_ms && not_started && now - start > o->pending_timeout_ms) {
                r->pending_timed_out = 1;
                char d[32];
                units_format_duration(o->pending_timeout_ms, d, sizeof d);
                log_error("the job did not start within %s%s%s; cancelling", d, rs.message[0] ? ": " : "", rs.message);
                o->flavor->cancel(o->handle, o->settings, 0, &se);
                r->cancelled = 1;
                kill_at = now;
            } else if (o->deadline_ms && now > o->deadline_ms) {
                r->deadline_passed = 1;
                log_error("the run passed its overall deadline; cancelling");
                o->flavor->cancel(o->handle, o->settings, o->grace_ms, &se);
                r->cancelled = 1;
                kill_at = now + o->grace_ms + 90000;
            }
        }
        if (kill_at && now > kill_at) {
            log_warn("the job is still running after cancel; killing it");
            o->flavor->cancel(o->handle, o->settings, 0, &se);
            kill_at = 0;
        }
        time_sleep_ms(pause_ms, &unhandled_interrupt);
        pause_ms = pause_ms * 2 > FOLLOW_PAUSE_MS ? FOLLOW_PAUSE_MS : pause_ms * 2;
    }
    if (o->flavor && o->cleanup && !r->detached) {
        struct err ce = { 0 };
        if (o->flavor->cleanup(o->handle, o->settings, &ce) < 0)
            log_warn("cleaning up: %s", ce.msg);
    }
    if (o->handle_interrupts) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
    store_close(s);
    return rc;
}
