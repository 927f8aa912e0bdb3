/* Which AWS_CONTAINER_CREDENTIALS_FULL_URI addresses may be plain HTTP: loopback in every spelling
 * url_host_is_loopback knows, the ECS and EKS addresses; anything else needs https. The calling
 * thread's stop flag is raised, so an allowed address ends in "cancelled" before any connection. */
#include "../../cloud/aws/creds.h"
#include "../../runtime/http.h"
#include "tap.h"

#include <stdlib.h>

static void check(const char *uri, int allowed)
{
    struct aws_credentials c = { 0 };
    struct err e = { 0 };
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, 1);
    aws_credentials_reset();
    int rc = aws_credentials_get(&c, 0, &e);
    int refused = rc < 0 && strstr(e.msg, "must use https") != NULL;
    ok(rc < 0 && refused == !allowed && (refused || strstr(e.msg, "cancelled")), "%s is %s: %s", uri,
       allowed ? "allowed" : "refused", e.msg);
    if (rc == 0)
        aws_credentials_free(&c);
}

int main(void)
{
    const char *vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                           "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
                           "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
                           "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    struct err e = { 0 };
    if (http_global_init(&e) < 0)
        return 1;
    static atomic_int stop = 1;
    http_set_thread_stop(&stop);

    check("http://127.0.0.1:9/creds", 1);
    check("http://127.1:9/creds", 1);
    check("http://0x7f000001/creds", 1);
    check("http://localhost/creds", 1);
    check("http://LOCALHOST./creds", 1);
    check("http://[::1]:9/creds", 1);
    check("http://[::ffff:127.0.0.1]/creds", 1);
    check("http://0.0.0.0/creds", 1);
    check("http://[::]/creds", 1);
    check("http://169.254.170.2/v2/credentials/x", 1);
    check("http://169.254.170.23/v1/credentials", 1);
    check("http://[fd00:ec2::23]/v1/credentials", 1);
    check("https://creds.example.com/x", 1);
    check("http://198.51.100.7/creds", 0);
    check("http://127.example.com/creds", 0);
    check("http://localhost.example.com/creds", 0);
    check("http://10.0.0.1/creds", 0);
    check("http://[::2]/creds", 0);
    check("http://169.254.170.3/creds", 0);
    check("http://[fd00:ec2::24]/creds", 0);
    check("http://127.0.0.1@evil.example/creds", 0);
    check("http://localhost@evil.example/creds", 0);
    check("ftp://127.0.0.1/creds", 0);
    check("http:///creds", 0);
    return tap_done();
}
