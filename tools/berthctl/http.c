/*
 * http.c: berthctl's HTTP client of berthd, on libcurl: the handle's
 * set-up (timeouts, protocols, TLS trust), one request and its answer, the
 * bearer token, and the report of a failed exchange (the status and the
 * CloudError's code, message, target and details).
 *
 * It must never print or keep a secret: the Authorization header is built
 * in a buffer wiped after use, and text from a server is printed through
 * berthctl_put_clean().  Every exchange is bounded by the caller's
 * deadline; nothing here retries or waits on its own.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "berthctl.h"
#include "lib/curl.h"

#define CONNECT_TIMEOUT_MS 10000L
#define BODY_MAX ((size_t)64 << 20)     /* bytes of one answer we keep      */

/* ---- HTTP ------------------------------------------------------------------------- */

/* Frees what r holds and clears it. */
void berthctl_response_free(berthctl_response_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One exchange: METHOD url with `body` (NULL: none; "" an empty one) and
 * extra header lines, bounded by what is left of c->deadline.  Returns 0
 * when an answer came (look at r->status), -1 otherwise (r->why says why).
 * Either way r holds a body: free it with berthctl_response_free(). */
int berthctl_http(berthctl_client_t *c, const char *method, const char *url, const char *body,
                  const char *extra_header, berthctl_response_t *r)
{
    memset(r, 0, sizeof *r);
    int64_t left = c->deadline_ms - berth__clock_monotonic_ms();
    if (left <= 0) {
        snprintf(r->why, sizeof r->why, "timed out (--timeout %g s)", c->timeout_s);
        r->body = strdup("");
        return -1;
    }
    long left_ms = (long)left + 1;
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *hdrs = NULL, *t;
    char auth[8192];
    bool ok = true;
#define ADD_HEADER(s)                                                                       \
    do {                                                                                    \
        if (ok && (t = curl_slist_append(hdrs, (s))) != NULL)                               \
            hdrs = t;                                                                       \
        else                                                                                \
            ok = false;                                                                     \
    } while (0)
    ADD_HEADER("Accept: application/json");
    if (body != NULL)
        ADD_HEADER("Content-Type: application/json");
    if (c->ep.token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->ep.token);
        ADD_HEADER(auth);
        berthctl_wipe(auth);
    }
    if (extra_header != NULL)
        ADD_HEADER(extra_header);
#undef ADD_HEADER
    if (!ok) {
        curl_slist_free_all(hdrs);
        snprintf(r->why, sizeof r->why, "out of memory");
        r->body = strdup("");
        return -1;
    }
    berth__curl_options_t how = {
        .timeout_ms = left_ms,
        .connect_timeout_ms = left_ms < CONNECT_TIMEOUT_MS ? left_ms : CONNECT_TIMEOUT_MS,
        .cacert = c->ep.cacert,
        .insecure = c->ep.insecure,
    };
    berth__curl_buffer_t got = {.max = BODY_MAX};
    berth__curl_setup(h, &how);
    berth__curl_buffer_attach(h, &got);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "berthctl");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->why);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        }
    }
    CURLcode cc = curl_easy_perform(h);
    curl_slist_free_all(hdrs);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    r->too_big = got.too_big;
    r->body = berth__curl_buffer_finish(&got) == 0 ? got.data : NULL;
    r->len = got.len;
    if (r->body == NULL) {
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    if (cc != CURLE_OK) {
        if (r->too_big)
            snprintf(r->why, sizeof r->why, "the answer is larger than %zu bytes", BODY_MAX);
        else if (r->why[0] == '\0')
            snprintf(r->why, sizeof r->why, "%s", curl_easy_strerror(cc));
        r->status = 0;
        return -1;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->len > 0)
        r->json = json_loadb(r->body, r->len, 0, NULL);
    return 0;
}

/* Prints why an exchange failed: no answer, or the status and the
 * CloudError's code, message, target and details.  Returns BERTHCTL_EXIT_HTTP. */
int berthctl_http_error(const char *what, const berthctl_response_t *r)
{
    if (r->status == 0) {
        fprintf(stderr, "berthctl: %s: no answer: ", what);
        berthctl_put_clean(stderr, r->why, 300);
        fputc('\n', stderr);
        return BERTHCTL_EXIT_HTTP;
    }
    fprintf(stderr, "berthctl: %s failed: HTTP %ld\n", what, r->status);
    json_t *e = berthctl_json_get(r->json, "error");
    if (!json_is_object(e)) {
        if (r->len > 0) {
            fputs("  ", stderr);
            berthctl_put_clean(stderr, r->body, 300);
            fputc('\n', stderr);
        }
        return BERTHCTL_EXIT_HTTP;
    }
    static const char *const fields[] = {"code", "message", "target"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = berthctl_json_string(e, fields[i]);
        if (v != NULL && *v != '\0') {
            fprintf(stderr, "  %-8s ", fields[i]);
            berthctl_put_clean(stderr, v, 1000);
            fputc('\n', stderr);
        }
    }
    json_t *details = json_object_get(e, "details");
    size_t i;
    json_t *d;
    json_array_foreach(details, i, d)
    {
        if (i >= 20) {
            fprintf(stderr, "  (%zu more details)\n", json_array_size(details) - i);
            break;
        }
        fputs("  detail   ", stderr);
        berthctl_put_clean(
            stderr, berthctl_json_string(d, "code") ? berthctl_json_string(d, "code") : "?", 100);
        fputs(": ", stderr);
        berthctl_put_clean(
            stderr, berthctl_json_string(d, "message") ? berthctl_json_string(d, "message") : "",
            500);
        if (berthctl_json_string(d, "target") != NULL &&
            *berthctl_json_string(d, "target") != '\0') {
            fputs(" (target ", stderr);
            berthctl_put_clean(stderr, berthctl_json_string(d, "target"), 200);
            fputc(')', stderr);
        }
        fputc('\n', stderr);
    }
    return BERTHCTL_EXIT_HTTP;
}

/* Whether an HTTP status is a success (2xx). */
bool berthctl_http_ok(long s)
{
    return s >= 200 && s < 300;
}

/* ---- one exchange for the resource routes --------------------------------------------- */

/* Contract (berthctl.h): one exchange through berthctl_http(), errors
 * printed by berthctl_http_error(). */
int berthctl_http_request(const berthctl_endpoint_t *ep, const char *method, const char *path,
                          const char *body, double timeout_s, const char *what, long *status,
                          json_t **json)
{
    *status = 0;
    *json = NULL;
    berthctl_client_t c = {.ep = *ep, .timeout_s = timeout_s,
                           .deadline_ms = berth__clock_monotonic_ms() +
                                          (int64_t)(timeout_s * 1000)};
    berthctl_string_t b = {0};
    berthctl_string_printf(&b, "%s%s", ep->url, path);
    char *url = berthctl_string_take(&b);
    if (url == NULL || (c.curl = curl_easy_init()) == NULL) {
        free(url);
        return berthctl_out_of_memory();
    }
    berthctl_response_t r;
    int rc = berthctl_http(&c, method, url, body, NULL, &r);
    *status = r.status;
    if (rc != 0 || !berthctl_http_ok(r.status)) {
        rc = berthctl_http_error(what, &r);
    } else {
        *json = r.json;
        r.json = NULL;
        rc = BERTHCTL_EXIT_OK;
    }
    berthctl_response_free(&r);
    free(url);
    curl_easy_cleanup(c.curl);
    return rc;
}
