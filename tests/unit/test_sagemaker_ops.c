/* The sagemaker flavor's operations against a loopback server that answers each X-Amz-Target from
 * a script: submit's handle, poll's phases, a forged handle refused before any call, cancel only
 * after the job's tags name the run, no stop for an ended job, cleanup's check of the tags, the CloudWatch log lines in a
 * failure without an exit code, a job SageMaker does not know. */
#include "../../flavors/sagemaker/sagemaker.h"
#include "../../cloud/aws/creds.h"
#include "../../runtime/http.h"
#include "../../runtime/jsonutil.h"
#include "../../runtime/util.h"
#include "http_server.h"
#include "tap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

extern const struct flavor_ops flavor_sagemaker_ops;

#define RUN_ID "01J9ZQK8V3N4M5P6Q7R8S9T0AB"
#define RUN_URI "s3://bucket/runs/" RUN_ID "/"
#define JOB "stepop-" RUN_ID
#define ARN "arn:aws:sagemaker:eu-west-1:123456789012:training-job/" JOB

/* The script: an answer body per operation (status 200 unless it starts with "400 "). */
static struct {
    const char *op[8], *answer[8];
    int n;
    char seen[16][64];
    char bodies[16][2048];
    int n_seen;
} script;
static int listener;
static atomic_int stop_server;

static void *serve(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_server)) {
        int a = accept(listener, NULL, NULL);
        if (a < 0)
            continue;
        struct timeval limit = { .tv_sec = 5 };
        setsockopt(a, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        char head[4096], body[2048];
        if (read_request(a, head, sizeof head, body, sizeof body)) {
            const char *t = strcasestr(head, "\r\nX-Amz-Target: ");
            char target[64] = "";
            if (t)
                sscanf(t + 16, "%63s", target);
            const char *dot = strchr(target, '.');
            const char *op = dot ? dot + 1 : target;
            if (script.n_seen < 16) {
                snprintf(script.seen[script.n_seen], 64, "%s", op);
                snprintf(script.bodies[script.n_seen], 2048, "%s", body);
                script.n_seen++;
            }
            const char *ans = "400 {\"__type\":\"ValidationException\",\"message\":\"not scripted\"}";
            for (int i = 0; i < script.n; i++)
                if (!strcmp(script.op[i], op))
                    ans = script.answer[i];
            int bad = !strncmp(ans, "400 ", 4);
            char *r = xasprintf("HTTP/1.1 %s\r\nContent-Type: application/x-amz-json-1.1\r\nConnection: close\r\n"
                                "Content-Length: %zu\r\n\r\n%s",
                                bad ? "400 Bad Request" : "200 OK", strlen(ans + (bad ? 4 : 0)), ans + (bad ? 4 : 0));
            if (write(a, r, strlen(r)) < 0)
                r[0] = 0;
            free(r);
        }
        close(a);
    }
    return NULL;
}

static void set_script(int n, const char *const *pairs)
{
    memset(&script, 0, sizeof script);
    for (int i = 0; i < n; i++) {
        script.op[i] = pairs[2 * i];
        script.answer[i] = pairs[2 * i + 1];
    }
    script.n = n;
}

static int seen(const char *op)
{
    for (int i = 0; i < script.n_seen; i++)
        if (!strcmp(script.seen[i], op))
            return i + 1;
    return 0;
}

#define SCRIPT(...)                                                                                                    \
    do {                                                                                                               \
        const char *p_[] = { __VA_ARGS__ };                                                                            \
        set_script((int)(sizeof p_ / sizeof *p_ / 2), p_);                                                             \
    } while (0)

int main(void)
{
    struct err e = { 0 };
    setenv("STEPOP_HTTP_ATTEMPTS", "1", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_ENDPOINT_URL");
    if (http_global_init(&e) < 0)
        return 1;
    /* accept wakes every 100 ms to see whether the test is over. */
    int port;
    listener = loopback_listener(8, 100, &port);
    if (listener < 0)
        return 1;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    setenv("AWS_ENDPOINT_URL_SAGEMAKER", url, 1);
    setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", url, 1);
    pthread_t t;
    pthread_create(&t, NULL, serve, NULL);

    const struct flavor_ops *ops = &flavor_sagemaker_ops;
    cJSON *settings = cJSON_Parse("{\"region\": \"eu-west-1\", \"role_arn\": \"arn:aws:iam::123456789012:role/R\", "
                                  "\"instance_type\": \"ml.m5.xlarge\"}");
    struct manifest m;
    memset(&m, 0, sizeof m);
    m.run_id = (char *)RUN_ID;
    m.run_uri = (char *)RUN_URI;
    m.image = (char *)"123456789012.dkr.ecr.eu-west-1.amazonaws.com/train:1";
    m.grace_ms = 30000;
    struct job j = { .m = &m, .manifest_uri = RUN_URI "manifest.json", .settings = settings, .attempt = 1 };

    /* submit */
    SCRIPT("CreateTrainingJob", "{\"TrainingJobArn\": \"" ARN "\"}");
    cJSON *h = NULL;
    is_int(ops->submit(&j, &h, &e), 0, "submit creates the job");
    ok(seen("CreateTrainingJob") == 1, "with CreateTrainingJob");
    ok(strstr(script.bodies[0], "\"TrainingJobName\":\"" JOB "\"") != NULL, "named for the run");
    is_str(json_str(h, "job"), JOB, "handle: job");
    is_str(json_str(h, "arn"), ARN, "handle: arn");
    is_str(json_str(h, "region"), "eu-west-1", "handle: region");
    is_str(json_str(h, "run_id"), RUN_ID, "handle: run_id");
    is_str(json_str(h, "run_uri"), RUN_URI, "handle: run_uri");

    SCRIPT("CreateTrainingJob", "400 {\"__type\":\"ResourceInUse\",\"message\":\"Training job names must be unique within "
                                "an AWS account and region, and a training job with this name already exists (" ARN ")\"}");
    cJSON *h2 = NULL;
    is_int(ops->submit(&j, &h2, &e), -1, "a second submit of the run fails");
    ok(strstr(e.msg, "a training job named " JOB " exists already") && strstr(e.msg, "ResourceInUse"),
       "saying the job exists, in SageMaker's words too");

    /* poll */
    struct remote_state st;
    SCRIPT("DescribeTrainingJob", "{\"TrainingJobName\": \"" JOB "\", \"TrainingJobArn\": \"" ARN "\", "
                                  "\"TrainingJobStatus\": \"InProgress\", \"SecondaryStatus\": \"Training\"}");
    is_int(ops->poll(h, settings, &st, &e), 0, "poll");
    is_int(st.phase, REMOTE_RUNNING, "Training is running");
    ok(strstr(script.bodies[0], "\"TrainingJobName\":\"" JOB "\"") != NULL, "DescribeTrainingJob of the handle's job");

    cJSON *forged = cJSON_Duplicate(h, 1);
    cJSON_ReplaceItemInObject(forged, "job", cJSON_CreateString("someone-elses-job"));
    SCRIPT("DescribeTrainingJob", "{}");
    is_int(ops->poll(forged, settings, &st, &e), -1, "a handle naming another job ...");
    is_int(e.kind, ERR_REFUSED, "... is refused");
    is_int(script.n_seen, 0, "before any call");
    is_int(ops->cancel(forged, settings, 30000, &e), -1, "cancel refuses it too");
    is_int(ops->cleanup(forged, settings, &e), -1, "and cleanup");
    cJSON_Delete(forged);

    SCRIPT("DescribeTrainingJob", "400 {\"__type\":\"ValidationException\",\"message\":\"Requested resource not found.\"}");
    is_int(ops->poll(h, settings, &st, &e), 0, "an unknown job ...");
    is_int(st.phase, REMOTE_GONE, "... is gone");

    /* The failure's log lines when there is no exit code. */
    SCRIPT("DescribeTrainingJob",
           "{\"TrainingJobStatus\": \"Failed\", \"SecondaryStatus\": \"Failed\", \"FailureReason\": \"AlgorithmError: "
           "See job logs for more information\"}",
           "DescribeLogStreams", "{\"logStreams\": [{\"logStreamName\": \"" JOB "/algo-1-1700000000\"}]}", "GetLogEvents",
           "{\"events\": [{\"timestamp\": 1, \"message\": \"exec: stepop: not found\"}, {\"timestamp\": 2, \"message\": "
           "\"the container could not start\"}]}");
    is_int(ops->poll(h, settings, &st, &e), 0, "a failure without an exit code");
    ok(st.phase == REMOTE_EXITED && st.exit_code == -1, "exited -1");
    is_str(st.message,
           "training job " JOB " failed: AlgorithmError: See job logs for more information; its last log lines: exec: "
           "stepop: not found | the container could not start",
           "quotes the job's last log lines");
    int ls = seen("DescribeLogStreams"), ge = seen("GetLogEvents");
    ok(ls && strstr(script.bodies[ls - 1], "\"logGroupName\":\"/aws/sagemaker/TrainingJobs\"") &&
           strstr(script.bodies[ls - 1], "\"logStreamNamePrefix\":\"" JOB "/\""),
       "DescribeLogStreams on the job's prefix");
    ok(ge && strstr(script.bodies[ge - 1], "\"limit\":20") && strstr(script.bodies[ge - 1], "\"startFromHead\":false"),
       "GetLogEvents: the last 20");

    /* cancel */
    const char *running = "{\"TrainingJobArn\": \"" ARN "\", \"TrainingJobStatus\": \"InProgress\", "
                          "\"SecondaryStatus\": \"Training\"}";
    SCRIPT("DescribeTrainingJob", running, "ListTags",
           "{\"Tags\": [{\"Key\": \"stepop:run-id\", \"Value\": \"" RUN_ID "\"}, {\"Key\": \"stepop:run-uri\", "
           "\"Value\": \"" RUN_URI "\"}]}",
           "StopTrainingJob", "{}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "cancel");
    int lt = seen("ListTags");
    ok(lt && strstr(script.bodies[lt - 1], "\"ResourceArn\":\"" ARN "\""), "reads the job's tags by its ARN");
    ok(seen("StopTrainingJob") > lt, "then stops it");

    SCRIPT("DescribeTrainingJob", running, "ListTags",
           "{\"Tags\": [{\"Key\": \"stepop:run-id\", \"Value\": \"01OTHERRUN\"}, {\"Key\": \"stepop:run-uri\", "
           "\"Value\": \"" RUN_URI "\"}]}",
           "StopTrainingJob", "{}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job tagged for another run ...");
    is_int(e.kind, ERR_REFUSED, "... is refused");
    ok(strstr(e.msg, "its tag stepop:run-id is \"01OTHERRUN\"") != NULL, "naming what it found");
    ok(!seen("StopTrainingJob"), "and not stopped");

    SCRIPT("DescribeTrainingJob", running, "ListTags", "{\"Tags\": []}", "StopTrainingJob", "{}");
    is_int(ops->cancel(h, settings, 30000, &e), -1, "a job without stepop's tags is refused");
    ok(strstr(e.msg, "is missing") != NULL && !seen("StopTrainingJob"), "saying the tag is missing; not stopped");

    SCRIPT("DescribeTrainingJob", "{\"TrainingJobArn\": \"" ARN "\", \"TrainingJobStatus\": \"Completed\"}", "ListTags",
           "{\"Tags\": [{\"Key\": \"stepop:run-id\", \"Value\": \"" RUN_ID "\"}, {\"Key\": \"stepop:run-uri\", "
           "\"Value\": \"" RUN_URI "\"}]}",
           "StopTrainingJob", "400 {\"__type\":\"ValidationException\",\"message\":\"x\"}");
    is_int(ops->cancel(h, settings, 30000, &e), 0, "a job that ended: cancel succeeds");
    ok(!seen("StopTrainingJob"), "without a stop");

    SCRIPT("DescribeTrainingJob", "{\"TrainingJobArn\": \"" ARN "\", \"TrainingJobStatus\": \"Completed\"}", "ListTags",
           "{\"Tags\": [{\"Key\": \"stepop:run-id\", \"Value\": \"" RUN_ID "\"}, {\"Key\": \"stepop:run-uri\", "
           "\"Value\": \"" RUN_URI "\"}]}");
    is_int(ops->cleanup(h, settings, &e), 0, "cleanup has nothing to delete");
    ok(seen("ListTags") && script.n_seen == 2, "after checking the job's tags; nothing else is called");
    SCRIPT("DescribeTrainingJob", "{\"TrainingJobArn\": \"" ARN "\", \"TrainingJobStatus\": \"Completed\"}", "ListTags",
           "{\"Tags\": []}");
    is_int(ops->cleanup(h, settings, &e), -1, "cleanup refuses a job without the run's tags");
    is_int(e.kind, ERR_REFUSED, "ERR_REFUSED");

    /* SageMaker restarts a spot job, and a job under RetryStrategy. */
    cJSON *spot = cJSON_Parse("{\"spot\": true}"), *retry = cJSON_Parse("{\"max_retry_attempts\": 2}");
    ok(!ops->may_restart(settings), "may_restart: not without spot or retries");
    ok(ops->may_restart(spot), "may_restart: spot");
    ok(ops->may_restart(retry), "may_restart: max_retry_attempts");
    cJSON_Delete(spot);
    cJSON_Delete(retry);

    atomic_store(&stop_server, 1);
    pthread_join(t, NULL);
    close(listener);
    cJSON_Delete(h);
    cJSON_Delete(settings);
    return tap_done();
}
