#include "yamljson.h"

#include <string.h>
#include <strings.h>
#include <yaml.h>

#define YAMLJSON_MAX_DEPTH 64
#define YAMLJSON_MAX_NODES 100000

struct conv {
    yaml_document_t *doc;
    long nodes;
    struct err *e;
};

static cJSON *scalar(const yaml_node_t *n)
{
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (len == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
            strcmp(v, "NULL") == 0)
            return cJSON_CreateNull();
        if (strcmp(v, "true") == 0 || strcmp(v, "True") == 0 || strcmp(v, "TRUE") == 0)
            return cJSON_CreateTrue();
        if (strcmp(v, "false") == 0 || strcmp(v, "False") == 0 || strcmp(v, "FALSE") == 0)
            return cJSON_CreateFalse();
    }
    if (memchr(v, '\0', len))
        return NULL; /* cJSON strings cannot hold it; refused by the caller */
    return cJSON_CreateString(v);
}

static cJSON *convert(struct conv *c, yaml_node_t *n, int depth)
{
    if (++c->nodes > YAMLJSON_MAX_NODES) {
        err_set(c->e, ERR_INVALID, "more than %d nodes (aliases expanding?)", YAMLJSON_MAX_NODES);
        return NULL;
    }
    if (depth > YAMLJSON_MAX_DEPTH) {
        err_set(c->e, ERR_INVALID, "line %zu: nested deeper than %d levels", n->start_mark.line + 1, YAMLJSON_MAX_DEPTH);
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        cJSON *s = scalar(n);
        if (!s)
            err_set(c->e, ERR_INVALID, "line %zu: a value holds a NUL character", n->start_mark.line + 1);
        return s;
    }
    case YAML_SEQUENCE_NODE: {
        cJSON *a = cJSON_CreateArray();
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            cJSON *v = convert(c, yaml_document_get_node(c->doc, *it), depth + 1);
            if (!v) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, v);
        }
        return a;
    }
    case YAML_MAPPING_NODE: {
        cJSON *o = cJSON_CreateObject();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
            if (k->type != YAML_SCALAR_NODE || memchr(k->data.scalar.value, '\0', k->data.scalar.length)) {
                err_set(c->e, ERR_INVALID, "line %zu: a key that is not a plain string", k->start_mark.line + 1);
                cJSON_Delete(o);
                return NULL;
            }
            const char *key = (const char *)k->data.scalar.value;
            if (cJSON_GetObjectItemCaseSensitive(o, key)) {
                err_set(c->e, ERR_INVALID, "line %zu: duplicate key \"%.100s\"", k->start_mark.line + 1, key);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON *v = convert(c, yaml_document_get_node(c->doc, p->value), depth + 1);
            if (!v) {
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_AddItemToObject(o, key, v);
        }
        return o;
    }
    default:
        err_set(c->e, ERR_INVALID, "an empty YAML node");
        return NULL;
    }
}

int yamljson_parse(const char *text, size_t len, cJSON **out, struct err *e)
{
    *out = NULL;
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser))
        return err_set(e, ERR_INTERNAL, "libyaml: out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc = err_set(e, ERR_INVALID, "line %zu column %zu: %s%s%s", parser.problem_mark.line + 1,
                         parser.problem_mark.column + 1, parser.problem ? parser.problem : "malformed YAML",
                         parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        return rc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (!root) {
        *out = cJSON_CreateNull();
    } else {
        struct conv c = { .doc = &doc, .e = e };
        *out = convert(&c, root, 0);
        rc = *out ? 0 : -1;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}
