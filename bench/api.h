/*
 * api.h: berth-bench's `api` scenario (api.c) and the HTTP client helpers the
 * scenarios that talk to berthd share (pool.c).
 */
#ifndef BERTH_BENCH_API_H
#define BERTH_BENCH_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

/* Runs `berth-bench api ...` (argv[1] is "api"); returns the exit status. */
int bench_api_main(int argc, char **argv);

/* What other scenarios that talk to berthd share with this one. */

/* A libcurl handle set up as the api scenario's are (bearer `token`, may
 * be NULL; TLS checked against `cacert`, or not at all when `insecure`),
 * and its header list in *headers.  Free both with curl_easy_cleanup()
 * and curl_slist_free_all().  NULL when out of memory. */
CURL *bench_api_client(const char *token, const char *cacert, bool insecure,
                       struct curl_slist **headers);

/* One request on h: METHOD url with `body` (NULL: none); the answer's body
 * in *out (may be NULL; free() it).  Returns the HTTP status, 0 when no
 * answer came. */
long bench_api_request(CURL *h, const char *method, const char *url, const char *body,
                       char **out);

/* Sorts values[0..n-1] and returns its q-quantile (0 when n is 0). */
uint64_t bench_api_percentile(uint64_t *values, size_t n, double q);

#endif /* BERTH_BENCH_API_H */
