#include "endpoint.h"

#include "creds.h"

#include "../../runtime/url.h"
#include "../../runtime/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *aws_endpoint_override(const char *service_id)
{
    char name[96];
    snprintf(name, sizeof name, "AWS_ENDPOINT_URL_%s", service_id);
    return env_or(name, env_or("AWS_ENDPOINT_URL", NULL));
}

const char *aws_dns_suffix(const char *region)
{
    return str_has_prefix(region, "cn-") ? "amazonaws.com.cn" : "amazonaws.com";
}

int aws_endpoint_resolve(const char *service_id, const char *host_prefix, struct aws_endpoint *ep, struct err *e)
{
    memset(ep, 0, sizeof *ep);
    ep->region = aws_region();
    const char *url = aws_endpoint_override(service_id);
    if (!url) {
        ep->scheme = xstrdup("https");
        ep->host = xasprintf("%s.%s.%s", host_prefix, ep->region, aws_dns_suffix(ep->region));
        return 0;
    }
    static const char *const web[] = { "http", "https", NULL };
    char what[96];
    snprintf(what, sizeof what, "AWS_ENDPOINT_URL[_%s]", service_id);
    struct url u;
    if (url_endpoint(what, url, web, &u, e) < 0)
        return -1;
    ep->scheme = xstrdup(u.scheme);
    ep->host = xstrdup(u.hostport);
    url_free(&u);
    ep->custom = 1;
    return 0;
}

void aws_endpoint_free(struct aws_endpoint *ep)
{
    free(ep->scheme);
    free(ep->host);
    free(ep->region);
}
