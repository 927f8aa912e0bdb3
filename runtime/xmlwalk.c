#include "xmlwalk.h"

#include "util.h"

#include <expat.h>
#include <stdlib.h>
#include <string.h>

struct walk {
    struct buf path, text;
    size_t depth_len[64]; /* path length before each open element, for popping */
    int depth;
    xml_walk_fn fn;
    void *ctx;
    struct err *e;
    int stopped;
    XML_Parser parser;
};

static const char *local_name(const char *name)
{
    const char *bar = strrchr(name, '|');
    return bar ? bar + 1 : name;
}

static void XMLCALL on_start(void *ud, const char *name, const char **attrs)
{
    (void)attrs;
    struct walk *w = ud;
    if (w->depth >= (int)(sizeof w->depth_len / sizeof w->depth_len[0])) {
        err_set(w->e, ERR_INVALID, "XML nested too deeply");
        w->stopped = 1;
        XML_StopParser(w->parser, XML_FALSE);
        return;
    }
    w->depth_len[w->depth++] = w->path.len;
    if (w->path.len)
        buf_append(&w->path, "/", 1);
    const char *n = local_name(name);
    buf_append(&w->path, n, strlen(n));
    w->text.len = 0;
    buf_append(&w->text, "", 0);
}

static void XMLCALL on_text(void *ud, const char *s, int len)
{
    struct walk *w = ud;
    buf_append(&w->text, s, (size_t)len);
}

static void XMLCALL on_end(void *ud, const char *name)
{
    (void)name;
    struct walk *w = ud;
    if (w->stopped)
        return;
    if (w->fn(w->ctx, w->path.data, w->text.data ? w->text.data : "", w->e) < 0) {
        w->stopped = 1;
        XML_StopParser(w->parser, XML_FALSE);
        return;
    }
    w->path.len = w->depth_len[--w->depth];
    w->path.data[w->path.len] = '\0';
    w->text.len = 0;
    if (w->text.data)
        w->text.data[0] = '\0';
}

int xml_walk(const char *data, size_t len, xml_walk_fn fn, void *ctx, struct err *e)
{
    struct walk w = { .fn = fn, .ctx = ctx, .e = e };
    w.parser = XML_ParserCreateNS(NULL, '|');
    if (!w.parser)
        return err_set(e, ERR_INTERNAL, "cannot create an XML parser");
    XML_SetUserData(w.parser, &w);
    XML_SetElementHandler(w.parser, on_start, on_end);
    XML_SetCharacterDataHandler(w.parser, on_text);
    int rc = 0;
    if (XML_Parse(w.parser, data ? data : "", (int)len, 1) == XML_STATUS_ERROR) {
        if (!w.stopped)
            err_set(e, ERR_INVALID, "malformed XML: %s", XML_ErrorString(XML_GetErrorCode(w.parser)));
        rc = -1;
    } else if (w.stopped) {
        rc = -1;
    }
    XML_ParserFree(w.parser);
    buf_free(&w.path);
    buf_free(&w.text);
    return rc;
}

struct find {
    const char *suffix;
    char *found;
};

static int find_cb(void *ctx, const char *path, const char *text, struct err *e)
{
    (void)e;
    struct find *f = ctx;
    size_t pl = strlen(path), sl = strlen(f->suffix);
    if (!f->found && (strcmp(path, f->suffix[0] == '/' ? f->suffix + 1 : f->suffix) == 0 ||
                      (pl >= sl && strcmp(path + pl - sl, f->suffix) == 0)))
        f->found = xstrdup(text);
    return 0;
}

char *xml_find(const char *data, size_t len, const char *suffix)
{
    struct find f = { .suffix = suffix };
    struct err e;
    if (xml_walk(data, len, find_cb, &f, &e) < 0) {
        free(f.found);
        return NULL;
    }
    return f.found;
}
