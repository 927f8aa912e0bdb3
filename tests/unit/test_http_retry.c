#include "../../runtime/http.h"
#include "tap.h"

#include <curl/curl.h>

int main(void)
{
    ok(http_retryable_status(500), "500 is retried");
    ok(http_retryable_status(502), "502 is retried");
    ok(http_retryable_status(503), "503 is retried");
    ok(http_retryable_status(504), "504 is retried");
    ok(http_retryable_status(408), "408 is retried");
    ok(http_retryable_status(429), "429 is retried");
    ok(!http_retryable_status(501), "501 Not Implemented is not retried");
    ok(!http_retryable_status(505), "505 is not retried");
    ok(!http_retryable_status(400), "400 is not retried");
    ok(!http_retryable_status(403), "403 is not retried");
    ok(!http_retryable_status(404), "404 is not retried");
    ok(!http_retryable_status(412), "412 is not retried");
    ok(!http_retryable_status(200), "200 is not retried");

    ok(http_retryable_curl_code(CURLE_COULDNT_CONNECT), "connection refused is retried");
    ok(http_retryable_curl_code(CURLE_RECV_ERROR), "reset while receiving is retried");
    ok(http_retryable_curl_code(CURLE_SEND_ERROR), "reset while sending is retried");
    ok(http_retryable_curl_code(CURLE_OPERATION_TIMEDOUT), "stall (low speed limit) is retried");
    ok(http_retryable_curl_code(CURLE_PARTIAL_FILE), "short body is retried");
    ok(http_retryable_curl_code(CURLE_GOT_NOTHING), "empty reply is retried");
    ok(!http_retryable_curl_code(CURLE_PEER_FAILED_VERIFICATION), "TLS verification failure is not retried");
    ok(!http_retryable_curl_code(CURLE_URL_MALFORMAT), "malformed URL is not retried");
    ok(!http_retryable_curl_code(CURLE_WRITE_ERROR), "local write error is not retried");

    struct http_config cfg = { .retry_base_ms = 100, .retry_max_ms = 1000 };
    for (int attempt = 1; attempt <= 6; attempt++) {
        long long full = 100LL << (attempt - 1);
        if (full > 1000)
            full = 1000;
        int in_range = 1;
        for (unsigned r = 0; r < 2000; r += 7) {
            int64_t d = http_backoff_ms(attempt, -1, &cfg, r);
            if (d < full / 2 || d > full)
                in_range = 0;
        }
        ok(in_range, "attempt %d backs off between %lld and %lld ms", attempt, full / 2, full);
    }
    is_int(http_backoff_ms(1, 5000, &cfg, 3), 5000, "Retry-After longer than the backoff wins");
    ok(http_backoff_ms(1, 10, &cfg, 3) >= 50, "a short Retry-After does not shorten the backoff");

    time_t now = 1700000000;
    is_int(http_parse_retry_after("7", now), 7000, "Retry-After: 7 is 7 s");
    is_int(http_parse_retry_after(" 0", now), 0, "Retry-After: 0 is immediate");
    is_int(http_parse_retry_after("soon", now), -1, "a malformed Retry-After is ignored");
    is_int(http_parse_retry_after("-3", now), -1, "a negative Retry-After is ignored");
    /* 1700000000 = Tue, 14 Nov 2023 22:13:20 GMT */
    is_int(http_parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now), 10000, "an HTTP-date Retry-After");
    is_int(http_parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now), 0, "an HTTP-date in the past is now");
    return tap_done();
}
