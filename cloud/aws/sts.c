/* STS GetCallerIdentity, signed like every AWS call of stepop (sign.h). */
#include "sts.h"

#include "creds.h"
#include "endpoint.h"
#include "sign.h"
#include "sigv4.h"

#include "../../runtime/doctor.h"
#include "../../runtime/http.h"
#include "../../runtime/util.h"
#include "../../runtime/xmlwalk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aws_sts_caller_identity(char **arn, char **account, struct err *e)
{
    *arn = *account = NULL;
    struct aws_endpoint ep;
    if (aws_endpoint_resolve("STS", "sts", &ep, e) < 0) {
        aws_endpoint_free(&ep);
        return -1;
    }
    static const char body[] = "Action=GetCallerIdentity&Version=2011-06-15";
    char hash[65];
    sigv4_sha256_hex(body, strlen(body), hash);
    struct aws_sign sign = { .service = "sts", .region = ep.region, .host = ep.host, .path = "/",
                             .payload_hash = hash };
    char *url = xasprintf("%s://%s/", ep.scheme, ep.host);
    const char *hdr[] = { "Content-Type: application/x-www-form-urlencoded; charset=utf-8", "Accept: text/xml", NULL };
    struct http_request req = { .method = "POST", .url = url, .headers = hdr, .body = body, .body_len = strlen(body),
                                .max_body = 1u << 20, .timeout_ms = 30000, .sign = aws_sign_hook, .hook_ctx = &sign };
    struct http_client *client = http_client_new();
    struct http_response resp;
    int rc = http_perform(client, &req, &resp, e);
    if (rc < 0) {
        char *code = xml_find(resp.body.data, resp.body.len, "/Error/Code");
        char *msg = xml_find(resp.body.data, resp.body.len, "/Error/Message");
        if (code)
            err_set(e, ERR_AUTH, "STS GetCallerIdentity at %s: HTTP %ld %s%s%s", url, resp.status, code,
                    msg ? ": " : "", msg ? msg : "");
        else
            err_prefix(e, "STS GetCallerIdentity at %s: ", url);
        free(code);
        free(msg);
    } else {
        *arn = xml_find(resp.body.data, resp.body.len, "/GetCallerIdentityResult/Arn");
        *account = xml_find(resp.body.data, resp.body.len, "/GetCallerIdentityResult/Account");
        if (!*arn)
            rc = err_set(e, ERR_HTTP, "STS GetCallerIdentity at %s answered without an Arn", url);
    }
    http_response_free(&resp);
    http_client_free(client);
    aws_endpoint_free(&ep);
    free(url);
    return rc;
}

int aws_doctor_lines(struct doctor *d, const char *what)
{
    struct aws_credentials c;
    struct err e = { 0 };
    char name[64];
    snprintf(name, sizeof name, "%s credentials", what);
    if (aws_credentials_get(&c, 0, &e) < 0) {
        doctor_add(d, DOCTOR_FAIL, name, "%s (hint: docs/artifacts.md lists the AWS sources)", e.msg);
        return -1;
    }
    char *region = aws_region();
    doctor_add(d, DOCTOR_OK, name, "AWS %s (profile %s, region %s)", c.provider, aws_profile(), region);
    free(region);
    aws_credentials_free(&c);
    snprintf(name, sizeof name, "%s identity", what);
    char *arn, *account;
    if (aws_sts_caller_identity(&arn, &account, &e) < 0)
        doctor_add(d, DOCTOR_FAIL, name, "%s (hint: are the keys valid?)", e.msg);
    else
        doctor_add(d, DOCTOR_OK, name, "%s (account %s)", arn, account ? account : "unknown");
    free(arn);
    free(account);
    return 0;
}
