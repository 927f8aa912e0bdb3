#include "progress.h"

#include "timeutil.h"
#include "units.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void progress_begin(struct progress *p, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start_ms = time_mono_ms();
    const char *fmt = getenv("STEPOP_LOG_FORMAT");
    p->enabled = isatty(2) && !env_flag("STEPOP_NO_PROGRESS") && !(fmt && strcmp(fmt, "json") == 0);
}

static void draw(struct progress *p, int64_t now)
{
    char done[32], total[32], rate[32], eta[32] = "";
    double secs = (double)(now - p->start_ms) / 1000.0;
    double bps = secs > 0 ? (double)p->done / secs : 0;
    units_format_size(p->done, done, sizeof done);
    units_format_size((int64_t)bps, rate, sizeof rate);
    if (p->total > 0) {
        units_format_size(p->total, total, sizeof total);
        if (bps > 0 && p->done < p->total) {
            char d[24];
            units_format_duration((int64_t)((double)(p->total - p->done) / bps * 1000.0), d, sizeof d);
            snprintf(eta, sizeof eta, "  ETA %s", d);
        }
        fprintf(stderr, "\r%s  %s / %s  %3d%%  %s/s%s\033[K", p->label, done, total,
                (int)(p->done * 100 / p->total), rate, eta);
    } else {
        fprintf(stderr, "\r%s  %s  %s/s\033[K", p->label, done, rate);
    }
    p->last_draw_ms = now;
}

void progress_add(struct progress *p, int64_t n)
{
    p->done += n;
    if (!p->enabled)
        return;
    int64_t now = time_mono_ms();
    if (now - p->last_draw_ms >= 100)
        draw(p, now);
}

void progress_end(struct progress *p)
{
    if (!p->enabled)
        return;
    draw(p, time_mono_ms());
    fputc('\n', stderr);
}
