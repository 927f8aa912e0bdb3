/* STS GetCallerIdentity (query API, Version 2011-06-15): whose credentials these are, asked
 * without side effects and without any permission (AWS documents that no policy can deny it),
 * for `stepop doctor`. The endpoint is the SDKs': AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL,
 * else sts.<region>.amazonaws.com. */
#ifndef STEPOP_AWS_STS_H
#define STEPOP_AWS_STS_H

#include "../../runtime/err.h"

/* *arn and *account (caller frees) from the answer's GetCallerIdentityResult. */
int aws_sts_caller_identity(char **arn, char **account, struct err *e);

struct doctor;
/* `stepop doctor`'s lines for a user of the AWS chain: "<what> credentials" (which provider gave
 * them: "environment", "web identity", ...) and "<what> identity" (GetCallerIdentity's Arn and
 * Account). Returns 0 when the credentials were found. */
int aws_doctor_lines(struct doctor *d, const char *what);

#endif
