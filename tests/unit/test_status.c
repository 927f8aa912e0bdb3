#include "../../runtime/jsonutil.h"
#include "../../runtime/status.h"
#include "tap.h"

#include <string.h>

/* Parses text as status.json; returns status_from_json's result, e filled. */
static int parse(const char *text, struct run_status *s, struct err *e)
{
    cJSON *j;
    if (json_parse(text, strlen(text), "status.json", &j, e) < 0)
        return -1;
    int rc = status_from_json(j, s, e);
    cJSON_Delete(j);
    status_free(s);
    return rc;
}

static void bad(const char *text, const char *want)
{
    struct run_status s;
    struct err e = { 0 };
    int rc = parse(text, &s, &e);
    ok(rc < 0 && strstr(e.msg, want), "refused %s: \"%s\"", text, e.msg);
    if (rc == 0 || !strstr(e.msg, want))
        printf("#   want a message containing: %s\n", want);
}

int main(void)
{
    struct run_status s;
    struct err e = { 0 };
    int rc = parse("{\"phase\":\"failed\",\"run_id\":\"r1\",\"attempt\":3,\"reason\":\"user_error\",\"exit_code\":255,"
                   "\"signal\":null,\"gpu\":{\"devices\":[{\"name\":\"a\"},{\"name\":\"b\"}]}}",
                   &s, &e);
    ok(rc == 0, "a status parses (%s)", rc ? e.msg : "ok");
    is_int(s.attempt, 3, "attempt");
    is_int(s.exit_code, 255, "exit code 255 is accepted");
    is_int(s.signal, 0, "null signal is none");
    rc = parse("{\"phase\":\"pending\"}", &s, &e);
    ok(rc == 0 && s.attempt == 1 && s.exit_code == -1, "defaults: attempt 1, no exit code");

    bad("{\"phase\":\"running\",\"attempt\":1,\"attempt\":2}", "status.json: attempt: duplicate field");
    bad("{\"phase\":\"running\",\"phase\":\"succeeded\"}", "status.json: phase: duplicate field");
    bad("{\"phase\":\"running\",\"phases\":{\"running\":{\"started_at\":null,\"started_at\":null}}}",
        "status.json: phases.running.started_at: duplicate field");
    bad("{\"phase\":\"running\",\"gpu\":{\"devices\":[{\"name\":\"a\"},{\"name\":\"b\",\"name\":\"c\"}]}}",
        "status.json: gpu.devices[1].name: duplicate field");
    bad("{\"phase\":\"failed\",\"exit_code\":1e300}", "status.json: exit_code: expected a whole number from 0 to 255");
    bad("{\"phase\":\"failed\",\"exit_code\":9007199254740993}", "exit_code: expected a whole number");
    bad("{\"phase\":\"failed\",\"exit_code\":-1}", "exit_code: expected a whole number");
    bad("{\"phase\":\"failed\",\"exit_code\":1.5}", "exit_code: expected a whole number");
    bad("{\"phase\":\"failed\",\"signal\":4294967305}", "signal: expected a whole number from 0 to 127");
    bad("{\"phase\":\"running\",\"attempt\":18446744073709551616}", "attempt: expected a whole number from 1 to");
    bad("{\"phase\":\"running\",\"attempt\":0}", "attempt: expected a whole number from 1 to");
    bad("{\"phase\":\"running\",\"attempt\":\"2\"}", "attempt: expected a whole number");
    return tap_done();
}
