/* The AWS shared files (INI with [profile x] sections, comments, nested blocks), the region's
 * precedence, and the environment provider, without any server. */
#include "../../cloud/aws/creds.h"
#include "tap.h"

#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/stepop-aws-XXXXXX";

static char *write_file(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void clear_env(void)
{
    const char *vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                           "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE",
                           "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                           "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE" };
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    clear_env();
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    char conf[256];
    snprintf(conf, sizeof conf, "%s",
             write_file("config", "# comment\n; another\n[default]\nregion = eu-north-1\n\n"
                                  "[profile   spaced]\nregion=ap-east-1\n"
                                  "[profile dev]\nregion = us-west-2 # trailing comment\n"
                                  "s3 =\n  region = nested-not-this\n  max_concurrent_requests = 20\n"
                                  "output = json\n"
                                  "[dev]\nregion = not-a-profile-in-config\n"));
    char *v = NULL;
    is_int(aws_ini_get(conf, "default", "region", &v), 1, "[default] found");
    is_str(v, "eu-north-1", "its region");
    free(v);
    is_int(aws_ini_get(conf, "profile dev", "region", &v), 1, "[profile dev] found");
    is_str(v, "us-west-2", "an inline comment after whitespace is dropped");
    free(v);
    is_int(aws_ini_get(conf, "profile dev", "output", &v), 1, "a key after a nested block");
    is_str(v, "json", "is the profile's own");
    free(v);
    is_int(aws_ini_get(conf, "profile spaced", "region", &v), 1, "[profile   spaced] matches \"profile spaced\"");
    free(v);
    is_int(aws_ini_get(conf, "profile nope", "region", &v), 0, "a missing section");
    is_int(aws_ini_get(conf, "default", "nope", &v), 0, "a missing key");
    is_int(aws_ini_get("/nonexistent/file", "default", "region", &v), 0, "a missing file is no error");

    setenv("AWS_CONFIG_FILE", conf, 1);
    char *r = aws_region();
    is_str(r, "eu-north-1", "the default profile's region");
    free(r);
    setenv("AWS_PROFILE", "dev", 1);
    r = aws_region();
    is_str(r, "us-west-2", "AWS_PROFILE selects [profile dev]");
    free(r);
    setenv("AWS_DEFAULT_REGION", "sa-east-1", 1);
    r = aws_region();
    is_str(r, "sa-east-1", "AWS_DEFAULT_REGION beats the profile");
    free(r);
    setenv("AWS_REGION", "ca-central-1", 1);
    r = aws_region();
    is_str(r, "ca-central-1", "AWS_REGION beats AWS_DEFAULT_REGION");
    free(r);
    clear_env();
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
    r = aws_region();
    is_str(r, "us-east-1", "us-east-1 when nothing is set");
    free(r);

    /* Credentials: the environment first, then the shared files. */
    char creds[256];
    snprintf(creds, sizeof creds, "%s",
             write_file("credentials", "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = s/ecret\n"
                                       "[temp]\naws_access_key_id=ASIATEMP\naws_secret_access_key=x\n"
                                       "aws_session_token = tok\n"));
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
    struct aws_credentials c;
    struct err e = { 0 };
    aws_credentials_reset();
    ok(aws_credentials_get(&c, 0, &e) == 0, "credentials from the shared file");
    is_str(c.access_key, "AKIDFILE", "the default profile's key");
    ok(c.session_token == NULL && c.expires == 0, "long-term keys: no token, no expiry");
    is_str(c.provider, "shared files", "named provider");
    aws_credentials_free(&c);
    aws_credentials_reset();
    setenv("AWS_PROFILE", "temp", 1);
    ok(aws_credentials_get(&c, 0, &e) == 0, "AWS_PROFILE=temp");
    is_str(c.session_token, "tok", "with its session token");
    aws_credentials_free(&c);
    aws_credentials_reset();
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    ok(aws_credentials_get(&c, 0, &e) == 0, "environment keys");
    is_str(c.access_key, "AKIDENV", "come before the shared files");
    aws_credentials_free(&c);
    setenv("AWS_ACCESS_KEY_ID", "CHANGED", 1);
    ok(aws_credentials_get(&c, 0, &e) == 0 && strcmp(c.access_key, "AKIDENV") == 0,
       "long-term keys are cached for the process");
    aws_credentials_free(&c);
    aws_credentials_reset();
    unsetenv("AWS_SECRET_ACCESS_KEY");
    ok(aws_credentials_get(&c, 0, &e) < 0, "half of the environment keys is an error");
    ok(strstr(e.msg, "AWS_SECRET_ACCESS_KEY is not") != NULL, "that names the missing variable");
    ok(strstr(e.msg, "shared files") == NULL, "and ends the search there");
    clear_env();
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
    aws_credentials_reset();
    ok(aws_credentials_get(&c, 0, &e) < 0, "no credentials anywhere");
    ok(strstr(e.msg, "environment:") && strstr(e.msg, "web identity:") && strstr(e.msg, "shared files:") &&
           strstr(e.msg, "container endpoint:") && strstr(e.msg, "EC2 instance metadata:"),
       "the message lists every provider");
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://198.51.100.7/creds", 1);
    aws_credentials_reset();
    ok(aws_credentials_get(&c, 0, &e) < 0 && strstr(e.msg, "must use https"),
       "a plain-HTTP container URI off loopback and the ECS/EKS addresses is refused");
    aws_credentials_reset();
    unlink(creds);
    unlink(conf);
    rmdir(dir);
    return tap_done();
}
