/* Small allocation and string helpers. Allocation failure aborts: a supervisor that cannot
 * allocate a few bytes cannot report anything useful, and the step runs in its own process. */
#ifndef STEPOP_UTIL_H
#define STEPOP_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies src into dst (size bytes), truncating; always NUL-terminated. */
void str_copy(char *dst, size_t size, const char *src);
int str_has_prefix(const char *s, const char *prefix);
int str_has_suffix(const char *s, const char *suffix);

/* A growable byte buffer, always NUL-terminated. */
struct buf {
    char *data;
    size_t len, cap;
};
void buf_append(struct buf *b, const void *data, size_t n);
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Reads a whole small file (configuration, tokens); refuses files over max bytes. */
int read_small_file(const char *path, size_t max, char **out, size_t *len_out);
/* Environment helpers: an unset or empty variable gives the default. */
const char *env_or(const char *name, const char *fallback);
int env_flag(const char *name); /* 1 for 1/true/yes/on */
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *out);

#endif
