/* `stepop artifact put|get|stat|ls|rm`: the stores and the pack/unpack engine from the shell. */
#include "store.h"
#include "transfer.h"

#include "../runtime/cli.h"
#include "../runtime/cmdopts.h"
#include "../runtime/commands.h"
#include "../runtime/exitcodes.h"
#include "../runtime/http.h"
#include "../runtime/jsonutil.h"
#include "../runtime/log.h"
#include "../runtime/timeutil.h"
#include "../runtime/units.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void catch_interrupts(void)
{
    struct sigaction sa = { .sa_handler = on_signal };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    http_set_cancel_flag(&interrupted);
}

static const char usage_text[] =
    "usage: stepop artifact <subcommand> [options]\n"
    "\n"
    "  put SRC URI [--format F] [--level N]   upload a file or directory (F: file, tar, tar.gz, tar.zst;\n"
    "                                         default from URI's suffix, else file for a file)\n"
    "  get URI DEST [--unpack] [--sha256 HEX] [--max-bytes SIZE] [--max-entries N]\n"
    "                                         download to DEST; --unpack extracts an archive into DEST\n"
    "  stat URI                               size, etag and time of an object\n"
    "  ls URI                                 objects and prefixes under URI\n"
    "  rm URI                                 remove an object\n"
    "  presign URI [--expires DUR] [--method GET|PUT]\n"
    "                                         print a URL that grants METHOD on the object for DUR\n"
    "                                         (default 1h, at most 7d; STEPOP_NOW fixes the signing time)\n"
    "\n"
    "Every subcommand takes --json (a JSON result on stdout). URIs: file://, http://, https://, s3://, gs://, az://;\n"
    "a plain path means a local file. Progress shows on a terminal (STEPOP_NO_PROGRESS=1 hides it).\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 refused (unsafe archive, limit, digest).\n";

enum { OPT_JSON = 1, OPT_FORMAT, OPT_LEVEL, OPT_UNPACK, OPT_SHA256, OPT_MAX_BYTES, OPT_MAX_ENTRIES, OPT_EXPIRES,
       OPT_METHOD };

static const struct cli_option options[] = {
    { "json", 0, 0, OPT_JSON },           { "format", 'f', 1, OPT_FORMAT },       { "level", 0, 1, OPT_LEVEL },
    { "unpack", 'x', 0, OPT_UNPACK },     { "sha256", 0, 1, OPT_SHA256 },         { "max-bytes", 0, 1, OPT_MAX_BYTES },
    { "max-entries", 0, 1, OPT_MAX_ENTRIES }, { "expires", 0, 1, OPT_EXPIRES }, { "method", 0, 1, OPT_METHOD },
    { 0 },
};
const struct cli_option *const artifact_cli_options = options;

struct args {
    int json, unpack, have_format;
    long level;
    enum pack_format format;
    const char *sha256;
    const char *method;
    int64_t expires_ms;
    struct unpack_limits limits;
    char *a, *b; /* positionals, as URIs */
    const char *raw_a, *raw_b;
};

static int fail(const struct err *e)
{
    log_error("%s", e->msg);
    return exit_code_for(e);
}

/* A URI argument the stores cannot take is a usage error. The URI the user names is the store
 * the command works for: STEPOP_HTTP_BEARER_TOKEN may go to its host, and to no other. */
static int open_store(const char *uri, struct store **s, struct err *e)
{
    store_http_set_bearer_scope(uri);
    if (store_open(uri, s, e) < 0) {
        if (e->kind == ERR_UNSUPPORTED || e->kind == ERR_INVALID)
            e->kind = ERR_USAGE;
        return -1;
    }
    return 0;
}

static int parse(const char *sub, const char *name, int argc, char **argv, int npos, const int *allowed, struct args *a,
                 struct err *e)
{
    struct cli c;
    char cmdname[32];
    snprintf(cmdname, sizeof cmdname, "artifact %s", sub);
    cli_init(&c, cmdname, options, argc, argv);
    memset(a, 0, sizeof *a);
    int rc = unpack_limits_from_env(&a->limits, e);
    const char *v;
    int id;
    while (rc == 0 && (id = cli_next(&c, &v, e)) != 0) {
        if (id == CLI_HELP) {
            fputs(usage_text, stdout);
            cli_free(&c);
            return 1;
        }
        if (id < 0) {
            rc = -1;
            break;
        }
        int ok = 0;
        for (const int *p = allowed; *p; p++)
            ok |= *p == id;
        if (!ok) {
            const char *opt = "?";
            for (const struct cli_option *o = options; o->name; o++)
                if (o->id == id)
                    opt = o->name;
            rc = err_set(e, ERR_USAGE, "%s: option --%s does not apply here (see 'stepop artifact --help')", cmdname, opt);
            break;
        }
        switch (id) {
        case OPT_JSON: a->json = 1; break;
        case OPT_UNPACK: a->unpack = 1; break;
        case OPT_SHA256: a->sha256 = v; break;
        case OPT_METHOD:
            if (strcmp(v, "GET") != 0 && strcmp(v, "PUT") != 0)
                rc = err_set(e, ERR_USAGE, "--method: expected GET or PUT, got \"%s\"", v);
            a->method = v;
            break;
        case OPT_EXPIRES:
            if (units_parse_duration(v, &a->expires_ms, e) < 0)
                rc = err_prefix(e, "--expires: ");
            else if (a->expires_ms < 1000 || a->expires_ms > 7LL * 24 * 3600 * 1000)
                rc = err_set(e, ERR_USAGE, "--expires: from 1s to 7d (the limit of S3's and GCS's V4 signatures)");
            if (rc < 0)
                e->kind = ERR_USAGE;
            break;
        case OPT_FORMAT:
            if (pack_format_parse(v, &a->format) < 0)
                rc = err_set(e, ERR_USAGE, "--format: \"%s\" is not one of file, tar, tar.gz, tar.zst", v);
            a->have_format = 1;
            break;
        case OPT_LEVEL: rc = cli_int("level", v, 1, 22, &a->level, e); break;
        case OPT_MAX_BYTES:
            if (units_parse_size(v, &a->limits.max_bytes, e) < 0)
                rc = err_prefix(e, "--max-bytes: ");
            if (rc == 0 && a->limits.max_bytes <= 0)
                rc = err_set(e, ERR_USAGE, "--max-bytes: must be positive");
            if (rc < 0)
                e->kind = ERR_USAGE;
            break;
        case OPT_MAX_ENTRIES: {
            long n;
            rc = cli_int("max-entries", v, 1, 2000000000L, &n, e);
            a->limits.max_entries = n;
            break;
        }
        }
    }
    if (rc == 0 && (c.pos_count != npos || c.saw_dashdash))
        rc = err_set(e, ERR_USAGE, "%s: expected %s (see 'stepop artifact --help')", cmdname, name);
    if (rc == 0) {
        a->raw_a = c.pos[0];
        a->a = uri_from_arg(c.pos[0]);
        if (npos > 1) {
            a->raw_b = c.pos[1];
            a->b = uri_from_arg(c.pos[1]);
        }
    }
    cli_free(&c);
    if (rc < 0 && e->kind != ERR_USAGE && e->kind != ERR_INVALID)
        return -1;
    if (rc < 0)
        e->kind = ERR_USAGE;
    return rc;
}

static void args_free(struct args *a)
{
    free(a->a);
    free(a->b);
}

static void print_result(const char *verb, const char *from, const char *to, const char *format,
                         const struct transfer_result *r, int64_t ms, int json)
{
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "source", from);
        cJSON_AddStringToObject(o, "destination", to);
        cJSON_AddStringToObject(o, "format", format);
        cJSON_AddNumberToObject(o, "size", (double)r->size);
        cJSON_AddStringToObject(o, "sha256", r->sha256);
        cJSON_AddNumberToObject(o, "entries", (double)r->entries);
        cJSON_AddNumberToObject(o, "content_bytes", (double)r->content_bytes);
        cJSON_AddNumberToObject(o, "elapsed_ms", (double)ms);
        char *s = json_print(o, 0);
        printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(o);
        return;
    }
    char size[32], dur[32];
    units_format_size(r->size, size, sizeof size);
    units_format_duration(ms, dur, sizeof dur);
    printf("%s %s -> %s (%s, %s, %lld entries, sha256 %s) in %s\n", verb, from, to, format, size,
           (long long)r->entries, r->sha256, dur);
}

static int do_put(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, OPT_FORMAT, OPT_LEVEL, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("put", "SRC URI", argc, argv, 2, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    int rc = EXIT_OK;
    char red[512];
    uri_redact(a.b, red, sizeof red);
    char *src = NULL;
    if (uri_file_path(a.a, &src, &e) < 0) {
        err_set(&e, ERR_USAGE, "artifact put: SRC must be a local path, got %s", a.raw_a);
        rc = fail(&e);
        goto out;
    }
    struct stat st;
    if (stat(src, &st) < 0) {
        err_set(&e, ERR_NOT_FOUND, "%s: no such file or directory", src);
        rc = fail(&e);
        goto out;
    }
    if (a.have_format && a.format == PACK_FILE && !S_ISREG(st.st_mode)) {
        err_set(&e, ERR_USAGE, "%s is not a regular file; format \"file\" holds one file (use tar, tar.gz or tar.zst "
                "for a directory)", src);
        rc = fail(&e);
        goto out;
    }
    if (!a.have_format) {
        if (pack_format_from_name(a.b, &a.format) < 0) {
            if (S_ISDIR(st.st_mode)) {
                err_set(&e, ERR_USAGE, "%s is a directory: give --format tar, tar.gz or tar.zst, or a URI ending in "
                        ".tar, .tar.gz or .tar.zst", src);
                rc = fail(&e);
                goto out;
            }
            a.format = PACK_FILE;
        }
    }
    struct store *s;
    if (open_store(a.b, &s, &e) < 0) {
        rc = fail(&e);
        goto out;
    }
    catch_interrupts();
    struct transfer_options o = { .format = a.format, .level = (int)a.level, .progress_label = "put" };
    struct transfer_result r;
    int64_t t0 = time_mono_ms();
    if (transfer_put(s, src, a.b, &o, &r, &e) < 0)
        rc = fail(&e);
    else
        print_result("put", src, red, pack_format_name(a.format), &r, time_mono_ms() - t0, a.json);
    store_close(s);
out:
    free(src);
    args_free(&a);
    return rc;
}

static int do_get(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, OPT_UNPACK, OPT_SHA256, OPT_MAX_BYTES, OPT_MAX_ENTRIES, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("get", "URI DEST", argc, argv, 2, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    int rc = EXIT_OK;
    char red[512];
    uri_redact(a.a, red, sizeof red);
    char *dest = NULL;
    if (uri_file_path(a.b, &dest, &e) < 0) {
        err_set(&e, ERR_USAGE, "artifact get: DEST must be a local path, got %s", a.raw_b);
        rc = fail(&e);
        goto out;
    }
    if (a.sha256 && strlen(a.sha256) != 64) {
        err_set(&e, ERR_USAGE, "--sha256: expected 64 hexadecimal digits");
        rc = fail(&e);
        goto out;
    }
    struct store *s;
    if (open_store(a.a, &s, &e) < 0) {
        rc = fail(&e);
        goto out;
    }
    catch_interrupts();
    struct transfer_options o = { .unpack = a.unpack, .expect_sha256 = a.sha256, .limits = a.limits,
                                  .progress_label = "get" };
    struct transfer_result r;
    int64_t t0 = time_mono_ms();
    if (transfer_get(s, a.a, dest, &o, &r, &e) < 0)
        rc = fail(&e);
    else
        print_result("get", red, dest, a.unpack ? "archive" : "file", &r, time_mono_ms() - t0, a.json);
    store_close(s);
out:
    free(dest);
    args_free(&a);
    return rc;
}

static int do_stat(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("stat", "URI", argc, argv, 1, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    struct store *s;
    int rc = EXIT_OK;
    struct store_stat st;
    if (open_store(a.a, &s, &e) < 0) {
        rc = fail(&e);
    } else {
        if (store_stat(s, a.a, &st, &e) < 0) {
            rc = fail(&e);
        } else {
            char red[512], when[40] = "";
            uri_redact(a.a, red, sizeof red);
            if (st.mtime)
                time_format_rfc3339_ms((int64_t)st.mtime * 1000, when, sizeof when);
            if (a.json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "uri", red);
                cJSON_AddNumberToObject(o, "size", (double)st.size);
                json_add_str(o, "etag", st.etag[0] ? st.etag : NULL);
                json_add_str(o, "modified", when[0] ? when : NULL);
                cJSON_AddBoolToObject(o, "is_dir", st.is_dir);
                char *j = json_print(o, 0);
                printf("%s\n", j);
                cJSON_free(j);
                cJSON_Delete(o);
            } else {
                printf("uri:      %s\n", red);
                if (st.is_dir)
                    printf("type:     directory\n");
                else
                    printf("size:     %lld\n", (long long)st.size);
                if (st.etag[0])
                    printf("etag:     %s\n", st.etag);
                if (when[0])
                    printf("modified: %s\n", when);
            }
        }
        store_close(s);
    }
    args_free(&a);
    return rc;
}

struct ls_ctx {
    int json;
    cJSON *arr;
};

static int ls_entry(void *ctx, const struct store_entry *ent, struct err *e)
{
    (void)e;
    struct ls_ctx *l = ctx;
    char when[40] = "";
    if (ent->mtime)
        time_format_rfc3339_ms((int64_t)ent->mtime * 1000, when, sizeof when);
    if (l->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", ent->name);
        if (ent->size >= 0)
            cJSON_AddNumberToObject(o, "size", (double)ent->size);
        else
            cJSON_AddNullToObject(o, "size");
        json_add_str(o, "modified", when[0] ? when : NULL);
        cJSON_AddItemToArray(l->arr, o);
    } else if (ent->size >= 0) {
        printf("%12lld  %-24s  %s\n", (long long)ent->size, when, ent->name);
    } else {
        printf("%12s  %-24s  %s\n", "-", when, ent->name);
    }
    return 0;
}

static int do_ls(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("ls", "URI", argc, argv, 1, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    struct store *s;
    int rc = EXIT_OK;
    if (open_store(a.a, &s, &e) < 0) {
        rc = fail(&e);
    } else {
        struct ls_ctx l = { .json = a.json, .arr = cJSON_CreateArray() };
        if (store_list(s, a.a, ls_entry, &l, &e) < 0) {
            rc = fail(&e);
        } else if (a.json) {
            char *j = json_print(l.arr, 0);
            printf("%s\n", j);
            cJSON_free(j);
        }
        cJSON_Delete(l.arr);
        store_close(s);
    }
    args_free(&a);
    return rc;
}

static int do_rm(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("rm", "URI", argc, argv, 1, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    struct store *s;
    int rc = EXIT_OK;
    if (open_store(a.a, &s, &e) < 0) {
        rc = fail(&e);
    } else {
        char red[512];
        uri_redact(a.a, red, sizeof red);
        if (store_remove(s, a.a, &e) < 0)
            rc = fail(&e);
        else if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "uri", red);
            cJSON_AddBoolToObject(o, "removed", 1);
            char *j = json_print(o, 0);
            printf("%s\n", j);
            cJSON_free(j);
            cJSON_Delete(o);
        } else
            printf("removed %s\n", red);
        store_close(s);
    }
    args_free(&a);
    return rc;
}

static int do_presign(int argc, char **argv)
{
    static const int allowed[] = { OPT_JSON, OPT_EXPIRES, OPT_METHOD, 0 };
    struct args a;
    struct err e = { 0 };
    int p = parse("presign", "URI", argc, argv, 1, allowed, &a, &e);
    if (p != 0)
        return p > 0 ? EXIT_OK : fail(&e);
    struct store *s;
    int rc = EXIT_OK;
    if (open_store(a.a, &s, &e) < 0) {
        rc = fail(&e);
    } else {
        char *url = NULL;
        const char *method = a.method ? a.method : "GET";
        int64_t expires_s = a.expires_ms ? a.expires_ms / 1000 : 3600;
        if (store_presign(s, a.a, method, expires_s, &url, &e) < 0) {
            /* A store without presigned URLs, or a URI naming no object, is a usage error. */
            if (e.kind == ERR_UNSUPPORTED || e.kind == ERR_INVALID)
                e.kind = ERR_USAGE;
            rc = fail(&e);
        } else if (a.json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "url", url);
            cJSON_AddStringToObject(o, "method", method);
            cJSON_AddNumberToObject(o, "expires_s", (double)expires_s);
            char *j = json_print(o, 0);
            printf("%s\n", j);
            cJSON_free(j);
            cJSON_Delete(o);
        } else {
            printf("%s\n", url);
        }
        free(url);
        store_close(s);
    }
    args_free(&a);
    return rc;
}

int cmd_artifact(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } subs[] = { { "put", do_put }, { "get", do_get }, { "stat", do_stat }, { "ls", do_ls }, { "rm", do_rm },
                 { "presign", do_presign } };
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 2, argv + 2);
    log_error("artifact: unknown subcommand \"%s\" (put, get, stat, ls, rm, presign)", argv[1]);
    return EXIT_USAGE;
}
