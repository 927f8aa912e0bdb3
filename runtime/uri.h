/* Artifact URIs: scheme detection, file:// paths, joining under a run prefix, redaction. */
#ifndef STEPOP_URI_H
#define STEPOP_URI_H

#include "err.h"

#include <stddef.h>

/* Copies the lower-cased scheme ("s3", "file") into out; -1 when uri has none. */
int uri_scheme(const char *uri, char *out, size_t len);
/* A command-line argument as a URI: one with a scheme is kept; a local path becomes
 * file:// with an absolute, percent-encoded path. Caller frees. */
char *uri_from_arg(const char *arg);
/* The local path of a file:// URI (percent-decoded). Caller frees. */
int uri_file_path(const char *uri, char **path, struct err *e);
/* prefix + name, with exactly one '/' between. Caller frees. */
char *uri_join(const char *prefix, const char *name);
/* The URI without userinfo and query string, for messages and logs. */
void uri_redact(const char *uri, char *out, size_t len);
/* The URI to print or store where the query matters (outputs.json, status): userinfo becomes
 * "***@", and the values of query parameters that are credentials (X-Amz-Signature,
 * X-Amz-Security-Token, X-Amz-Credential, X-Goog-Signature, X-Goog-Credential, Signature,
 * sig, access_token) become REDACTED; other parameters stay. Caller frees. */
char *uri_redact_secrets(const char *uri);
/* Percent-encodes every byte outside unreserved and those in keep ("/" for paths). */
char *uri_encode(const char *s, const char *keep);
/* Decodes %XX; -1 on a malformed escape or an encoded NUL. */
int uri_decode(const char *s, char **out);
/* The last path segment of uri (before any query), caller frees. */
char *uri_basename(const char *uri);

#endif
