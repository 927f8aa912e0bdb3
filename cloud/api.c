#include "api.h"

#include "../runtime/jsonutil.h"
#include "../runtime/uri.h"
#include "../runtime/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void api_response_free(struct api_response *r)
{
    cJSON_Delete(r->json);
    http_response_free(&r->http);
    memset(r, 0, sizeof *r);
}

/* ---- the platforms' error shapes ---- */

/* Copies a string member (when it is one) into out; 1 when it was there. */
static int api_member(const cJSON *obj, const char *key, char *out, size_t len)
{
    const char *s = json_str(obj, key);
    if (!s)
        return 0;
    str_copy(out, len, s);
    return 1;
}

int api_error_docker(const struct http_response *resp, const cJSON *body, struct api_error *out)
{
    (void)resp;
    return api_member(body, "message", out->message, sizeof out->message);
}

int api_error_google(const struct http_response *resp, const cJSON *body, struct api_error *out)
{
    (void)resp;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    if (!cJSON_IsObject(err))
        return 0;
    int found = api_member(err, "status", out->code, sizeof out->code);
    return api_member(err, "message", out->message, sizeof out->message) | found;
}

int api_error_azure(const struct http_response *resp, const cJSON *body, struct api_error *out)
{
    (void)resp;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(body, "error");
    if (!cJSON_IsObject(err))
        return 0;
    int found = api_member(err, "code", out->code, sizeof out->code);
    return api_member(err, "message", out->message, sizeof out->message) | found;
}

int api_error_kubernetes(const struct http_response *resp, const cJSON *body, struct api_error *out)
{
    (void)resp;
    const char *kind = json_str(body, "kind");
    if (!kind || strcmp(kind, "Status") != 0)
        return 0;
    int found = api_member(body, "reason", out->code, sizeof out->code);
    return api_member(body, "message", out->message, sizeof out->message) | found;
}

int api_error_aws_json(const struct http_response *resp, const cJSON *body, struct api_error *out)
{
    const char *type = resp ? http_header(resp, "x-amzn-errortype") : NULL;
    if (!type || !*type)
        type = json_str(body, "__type");
    if (!type)
        type = json_str(body, "code");
    if (type) {
        const char *hash = strchr(type, '#');
        if (hash)
            type = hash + 1;
        size_t n = strcspn(type, ":");
        snprintf(out->code, sizeof out->code, "%.*s", (int)n, type);
    }
    int found = type != NULL;
    found |= api_member(body, "message", out->message, sizeof out->message);
    if (!out->message[0])
        found |= api_member(body, "Message", out->message, sizeof out->message);
    return found;
}

/* ---- redaction ---- */

/* Replaces every occurrence of needle in b with "REDACTED". */
static void api_replace_all(struct buf *b, const char *needle)
{
    size_t n = strlen(needle);
    if (!n || !b->data)
        return;
    struct buf r = { 0 };
    const char *p = b->data, *hit;
    while ((hit = strstr(p, needle))) {
        buf_append(&r, p, (size_t)(hit - p));
        buf_append(&r, "REDACTED", 8);
        p = hit + n;
    }
    buf_append(&r, p, strlen(p));
    buf_free(b);
    *b = r;
}

static int api_uri_end(char c)
{
    return !c || isspace((unsigned char)c) || strchr("\"'<>`", c);
}

static int api_token_char(char c)
{
    return isalnum((unsigned char)c) || strchr("-._~+/=", c);
}

char *api_redact(const char *text, const char *const *secrets)
{
    struct buf b = { 0 };
    buf_append(&b, text, strlen(text));
    for (const char *const *s = secrets; s && *s; s++)
        api_replace_all(&b, *s);

    struct buf r = { 0 };
    const char *p = b.data;
    while (*p) {
        const char *sep = strstr(p, "://");
        const char *bearer = strcasestr(p, "bearer ");
        if (bearer && (!sep || bearer < sep)) {
            /* A bearer token: the word after it. */
            const char *tok = bearer + 7, *end = tok;
            while (api_token_char(*end))
                end++;
            buf_append(&r, p, (size_t)(tok - p));
            if (end > tok && !(end - tok == 8 && strncmp(tok, "REDACTED", 8) == 0))
                buf_append(&r, "REDACTED", 8);
            else
                buf_append(&r, tok, (size_t)(end - tok));
            p = end;
            continue;
        }
        if (!sep)
            break;
        /* A URI: its scheme back from "://", the rest up to white space or a quote. */
        const char *start = sep;
        while (start > p && (isalnum((unsigned char)start[-1]) || strchr("+.-", start[-1])))
            start--;
        const char *end = sep + 3;
        while (!api_uri_end(*end))
            end++;
        buf_append(&r, p, (size_t)(start - p));
        if (start == sep) {
            buf_append(&r, sep, (size_t)(end - sep));
        } else {
            char *uri = xstrndup(start, (size_t)(end - start));
            char *safe = uri_redact_secrets(uri);
            buf_append(&r, safe, strlen(safe));
            free(safe);
            free(uri);
        }
        p = end;
    }
    buf_append(&r, p, strlen(p));
    buf_free(&b);
    return r.data;
}

/* ---- the call ---- */

/* The caller's secrets and the credentials in its Authorization headers (the whole value and
 * its last word, the token), NULL-terminated; the strings are the caller's. */
static const char **api_secrets(const struct api_call *call)
{
    size_t n = 0, k = 0;
    for (const char *const *s = call->secrets; s && *s; s++)
        n++;
    for (const char *const *h = call->http.headers; h && *h; h++)
        n += 2;
    const char **v = xcalloc(n + 1, sizeof *v);
    for (const char *const *s = call->secrets; s && *s; s++)
        if (**s)
            v[k++] = *s;
    for (const char *const *h = call->http.headers; h && *h; h++) {
        if (strncasecmp(*h, "Authorization:", 14) != 0 && strncasecmp(*h, "Proxy-Authorization:", 20) != 0)
            continue;
        const char *val = strchr(*h, ':') + 1;
        while (*val == ' ')
            val++;
        if (!*val)
            continue;
        v[k++] = val;
        const char *sp = strrchr(val, ' ');
        if (sp && sp[1])
            v[k++] = sp + 1;
    }
    return v;
}

/* The platform's error in an answer; *parsed gets the answer as JSON (NULL when it is not). */
static int api_find_error(const struct api_call *call, const struct http_response *r, cJSON **parsed,
                          struct api_error *out)
{
    memset(out, 0, sizeof *out);
    cJSON *j = r->body.len ? cJSON_ParseWithLength(r->body.data, r->body.len) : NULL;
    int found = call->error && call->error(r, j, out);
    if (parsed)
        *parsed = j;
    else
        cJSON_Delete(j);
    return found;
}

static int api_retry_adapter(void *ctx, const struct http_response *r)
{
    const struct api_call *call = ctx;
    if (r->status < 300)
        return -1;
    struct api_error er;
    api_find_error(call, r, NULL, &er);
    return call->retry(call->retry_ctx, r->status, &er);
}

static enum err_kind api_status_kind(long st)
{
    if (st == 404)
        return ERR_NOT_FOUND;
    if (st == 409)
        return ERR_REFUSED;
    if (st == 401 || st == 403)
        return ERR_AUTH;
    return ERR_HTTP;
}

int api_perform(struct http_client *c, const struct api_call *call, struct api_response *resp, struct err *e)
{
    memset(resp, 0, sizeof *resp);
    struct http_request req = call->http;
    const char *method = req.method ? req.method : "GET";
    char *body = NULL, *ctype = NULL;
    const char **headers = NULL;
    if (call->body) {
        body = json_print(call->body, 0);
        req.body = body;
        req.body_len = strlen(body);
        size_t n = 0;
        for (const char *const *h = call->http.headers; h && *h; h++)
            n++;
        headers = xcalloc(n + 2, sizeof *headers);
        for (size_t i = 0; i < n; i++)
            headers[i] = call->http.headers[i];
        ctype = xasprintf("Content-Type: %s", call->content_type ? call->content_type : "application/json");
        headers[n] = ctype;
        req.headers = headers;
    }
    if (call->retry) {
        req.retry_hook = api_retry_adapter;
        req.hook_ctx = (void *)call;
    }
    char label[512];
    if (call->label)
        str_copy(label, sizeof label, call->label);
    else
        uri_redact(req.url, label, sizeof label);

    int rc = http_perform(c, &req, &resp->http, e);
    resp->status = resp->http.status;
    if (rc < 0 && resp->status >= 300) {
        long st = resp->status;
        int transient = e->transient;
        const struct api_error *er = &resp->error;
        int found = api_find_error(call, &resp->http, &resp->json, &resp->error);
        const char *detail = resp->http.body.data ? resp->http.body.data : "";
        char both[sizeof er->code + sizeof er->message + 2];
        if (found) {
            snprintf(both, sizeof both, "%s%s%s", er->code, er->code[0] && er->message[0] ? ": " : "", er->message);
            detail = both;
        }
        char *text = xasprintf("%s %s: HTTP %ld: %s", method, label, st, detail);
        const char **secrets = api_secrets(call);
        char *safe = api_redact(text, secrets);
        err_set(e, api_status_kind(st), "%s", safe);
        e->http_status = st;
        e->transient = transient;
        free(safe);
        free(secrets);
        free(text);
    } else if (rc == 0 && call->json_answer && resp->http.body.len) {
        if (json_parse(resp->http.body.data, resp->http.body.len, label, &resp->json, e) < 0)
            rc = -1;
    }
    free(ctype);
    free(headers);
    free(body);
    return rc;
}
