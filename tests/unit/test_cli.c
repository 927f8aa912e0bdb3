#include "../../runtime/cli.h"
#include "../../runtime/timeutil.h"
#include "tap.h"

enum { A_JSON = 1, A_FORMAT };
static const struct cli_option opts[] = { { "json", 0, 0, A_JSON }, { "format", 'f', 1, A_FORMAT }, { 0 } };

int main(void)
{
    char *argv1[] = { "src", "--format=tar", "-f", "tar.gz", "dst", "--json", "--", "cmd", "--json", NULL };
    struct cli c;
    struct err e = { 0 };
    const char *v;
    cli_init(&c, "t", opts, 9, argv1);
    is_int(cli_next(&c, &v, &e), A_FORMAT, "--format=tar");
    is_str(v, "tar", "inline value");
    is_int(cli_next(&c, &v, &e), A_FORMAT, "-f tar.gz");
    is_str(v, "tar.gz", "separate value");
    is_int(cli_next(&c, &v, &e), A_JSON, "--json");
    is_int(cli_next(&c, &v, &e), 0, "-- ends options");
    is_int(c.pos_count, 2, "two positionals");
    is_str(c.pos[1], "dst", "positional order");
    is_int(c.rest_count, 2, "two words after --");
    is_str(c.rest[1], "--json", "words after -- are not options");
    cli_free(&c);

    char *argv2[] = { "--bogus", NULL };
    cli_init(&c, "artifact put", opts, 1, argv2);
    ok(cli_next(&c, &v, &e) < 0 && e.kind == ERR_USAGE && strstr(e.msg, "unknown option --bogus"), "unknown option: %s",
       e.msg);
    cli_free(&c);
    char *argv3[] = { "--format", NULL };
    cli_init(&c, "t", opts, 1, argv3);
    ok(cli_next(&c, &v, &e) < 0 && strstr(e.msg, "needs a value"), "missing value: %s", e.msg);
    cli_free(&c);
    char *argv4[] = { "--json=1", NULL };
    cli_init(&c, "t", opts, 1, argv4);
    ok(cli_next(&c, &v, &e) < 0 && strstr(e.msg, "takes no value"), "flag with a value: %s", e.msg);
    cli_free(&c);
    char *argv5[] = { "-h", NULL };
    cli_init(&c, "t", opts, 1, argv5);
    is_int(cli_next(&c, &v, &e), CLI_HELP, "-h asks for help");
    cli_free(&c);
    long n;
    ok(cli_int("level", "19", 1, 22, &n, &e) == 0 && n == 19, "integer option");
    ok(cli_int("level", "23", 1, 22, &n, &e) < 0 && strstr(e.msg, "from 1 to 22"), "integer out of range");
    ok(cli_int("level", "4x", 1, 22, &n, &e) < 0, "integer with junk refused");

    time_t t;
    ok(time_parse("2013-05-24T00:00:00Z", &t) == 0 && t == 1369353600, "RFC 3339 UTC");
    ok(time_parse("20130524T000000Z", &t) == 0 && t == 1369353600, "basic ISO 8601 (AWS)");
    ok(time_parse("2013-05-24T02:00:00.250+02:00", &t) == 0 && t == 1369353600, "offset and fraction");
    ok(time_parse("2013-05-24", &t) < 0, "date alone refused");
    ok(time_parse("2013-13-24T00:00:00Z", &t) < 0, "month 13 refused");
    char buf[40];
    time_format_rfc3339_ms(1369353600123LL, buf, sizeof buf);
    is_str(buf, "2013-05-24T00:00:00.123Z", "format with milliseconds");
    return tap_done();
}
