#include "endpoint.h"

#include "creds.h"

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
    const char *sep = strstr(url, "://");
    if (!sep || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_%s] \"%s\" must start with http:// or https://", service_id,
                       url);
    ep->scheme = xstrndup(url, (size_t)(sep - url));
    const char *h = sep + 3;
    size_t n = strcspn(h, "/?#");
    if (h[n] && strspn(h + n, "/") != strlen(h + n))
        return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_%s] \"%s\" must not have a path", service_id, url);
    if (!n || memchr(h, '@', n))
        return err_set(e, ERR_INVALID, "AWS_ENDPOINT_URL[_%s] \"%s\" needs a host (and no user name)", service_id,
                       url);
    ep->host = xstrndup(h, n);
    ep->custom = 1;
    return 0;
}

void aws_endpoint_free(struct aws_endpoint *ep)
{
    free(ep->scheme);
    free(ep->host);
    free(ep->region);
}
