/* `stepop version`: our version and commit, and the versions of the libraries linked in. */
#include "commands.h"
#include "cli.h"
#include "cmdopts.h"
#include "exitcodes.h"
#include "jsonutil.h"
#include "log.h"

#include "../gpu/gpu.h"

#include <archive.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif
#include <zstd.h>

#ifndef STEPOP_COMMIT
#define STEPOP_COMMIT "unknown"
#endif

/* What computes the sha256 of every transfer: libcrypto's EVP SHA-256, which uses the CPU's SHA
 * instructions where they exist (x86 SHA-NI, Armv8 SHA2) unless OPENSSL_ia32cap / OPENSSL_armcap
 * masks them; about 3 times the speed of its plain code (docs/benchmarks.md). */
static const char *sha256_impl(void)
{
    int sha = 0;
    const char *mask = NULL;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
    mask = getenv("OPENSSL_ia32cap");
#elif defined(__aarch64__)
    sha = (getauxval(AT_HWCAP) & (1ul << 6)) != 0; /* HWCAP_SHA2 */
    mask = getenv("OPENSSL_armcap");
#endif
    if (!sha)
        return "libcrypto EVP, no CPU SHA instructions";
    return mask && *mask ? "libcrypto EVP, CPU SHA instructions (unless the OPENSSL_*cap mask set disables them)"
                         : "libcrypto EVP, CPU SHA instructions";
}

static const struct cli_option opts[] = { { "json", 0, 0, 1 }, { 0 } };
const struct cli_option *const version_cli_options = opts;

int cmd_version(int argc, char **argv)
{
    struct cli c;
    struct err e = { 0 };
    int json = 0, id;
    const char *v;
    cli_init(&c, "version", opts, argc - 1, argv + 1);
    while ((id = cli_next(&c, &v, &e)) > 0)
        json = 1;
    int extra = c.pos_count;
    cli_free(&c);
    if (id == CLI_HELP) {
        printf("usage: stepop version [--json]\n");
        return EXIT_OK;
    }
    if (id < 0 || extra) {
        log_error("%s", id < 0 ? e.msg : "version: takes no arguments");
        return EXIT_USAGE;
    }
    curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", STEPOP_VERSION);
    cJSON_AddStringToObject(o, "commit", STEPOP_COMMIT);
    cJSON *libs = cJSON_AddObjectToObject(o, "libraries");
    cJSON_AddStringToObject(libs, "libcurl", cv->version);
    cJSON_AddStringToObject(libs, "tls", cv->ssl_version ? cv->ssl_version : "none");
    /* HTTP/2 (nghttp2) is what the modal flavor's gRPC needs. */
    char h2[64];
    snprintf(h2, sizeof h2, "%s%s", (cv->features & CURL_VERSION_HTTP2) && cv->nghttp2_version ? "nghttp2/" : "none",
             (cv->features & CURL_VERSION_HTTP2) && cv->nghttp2_version ? cv->nghttp2_version : "");
    cJSON_AddStringToObject(libs, "http2", h2);
    cJSON_AddStringToObject(libs, "libarchive", archive_version_string());
    cJSON_AddStringToObject(libs, "zlib", zlibVersion());
    cJSON_AddStringToObject(libs, "zstd", ZSTD_versionString());
    cJSON_AddStringToObject(libs, "cjson", cJSON_Version());
    cJSON_AddStringToObject(libs, "libcrypto", OpenSSL_version(OPENSSL_VERSION));
    cJSON_AddStringToObject(libs, "sha256", sha256_impl());
    cJSON_AddStringToObject(libs, "cuda_runtime", gpu_runtime_compiled());
    if (json) {
        char *s = json_print(o, 1);
        printf("%s\n", s);
        cJSON_free(s);
    } else {
        printf("stepop %s (commit %s)\n", STEPOP_VERSION, STEPOP_COMMIT);
        for (cJSON *it = libs->child; it; it = it->next)
            printf("  %-13s %s\n", it->string, it->valuestring);
    }
    cJSON_Delete(o);
    return EXIT_OK;
}
