/* AWS credentials and region, found the way the AWS SDKs find them (see docs/artifacts.md):
 * environment keys, web identity through STS, the shared credentials and config files, the
 * ECS/EKS container endpoint, EC2 instance metadata (IMDSv2). Temporary credentials are cached
 * for the whole process and refreshed before they expire; every function here is thread-safe. */
#ifndef STEPOP_AWS_CREDS_H
#define STEPOP_AWS_CREDS_H

#include "../../runtime/err.h"

#include <time.h>

struct aws_credentials {
    char *access_key;
    char *secret_key;
    char *session_token; /* NULL for long-term keys */
    time_t expires;      /* 0: does not expire */
    const char *provider; /* "environment", "web identity", ... for messages */
};

/* Current credentials, copied into out (free with aws_credentials_free). The chain runs on first
 * use; cached temporary credentials are refreshed when fewer than 5 minutes are left (or, for
 * credentials that arrived with less, 1 minute). force_refresh asks the provider again at once
 * (after the server answered ExpiredToken). On failure e says which providers were tried and why
 * each one could not give credentials; no secret is ever in a message. */
int aws_credentials_get(struct aws_credentials *out, int force_refresh, struct err *e);
void aws_credentials_free(struct aws_credentials *c);
/* Forgets the cached credentials (tests, and processes that change their environment). */
void aws_credentials_reset(void);

/* AWS_REGION, else AWS_DEFAULT_REGION, else the profile's region in the config file, else
 * us-east-1. Caller frees. */
char *aws_region(void);
/* AWS_PROFILE, else AWS_DEFAULT_PROFILE, else "default". */
const char *aws_profile(void);

/* A value from an INI-style AWS shared file: section is the literal name between brackets
 * ("default", "profile dev"). Returns 1 found (value malloc'ed), 0 not found, -1 unreadable file.
 * Exposed for unit tests. */
int aws_ini_get(const char *path, const char *section, const char *key, char **value);

#endif
