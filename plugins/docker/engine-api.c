/*
 * engine-api.c: HTTP over the engine's unix socket with libcurl
 * (engine-api.h).
 *
 * Every exchange has a connect timeout, a total timeout and a body size
 * cap; a stalled stream (a pull that stops moving) is cut by libcurl's
 * low-speed limit.  Nothing here logs or copies a request anywhere: the
 * caller's bodies and headers may hold secrets.
 */
#define _GNU_SOURCE
#include "engine-api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "lib/curl.h"

struct engine_api {
    CURL *curl;
    char *socket_path;
    char version[32];
};

engine_api_t *engine_api_open(const char *socket_path, const char *version)
{
    engine_api_t *api = calloc(1, sizeof *api);
    if (api == NULL)
        return NULL;
    /* Reference-counted in libcurl >= 7.84; paired with close. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    api->socket_path = strdup(socket_path);
    api->curl = curl_easy_init();
    if (api->socket_path == NULL || api->curl == NULL) {
        engine_api_close(api);
        return NULL;
    }
    snprintf(api->version, sizeof api->version, "%s", version);
    return api;
}

void engine_api_close(engine_api_t *api)
{
    if (api == NULL)
        return;
    if (api->curl)
        curl_easy_cleanup(api->curl);
    free(api->socket_path);
    free(api);
    curl_global_cleanup();
}

int engine_api_call(engine_api_t *api, const char *method, const char *path, const char *body,
                    const char *const *headers, long timeout_s, engine_response_t *resp,
                    char *errbuf)
{
    memset(resp, 0, sizeof *resp);
    errbuf[0] = '\0';
    CURL *c = api->curl;
    curl_easy_reset(c);
    size_t urlcap = strlen(path) + 64;
    char *url = malloc(urlcap);
    if (url == NULL) {
        snprintf(errbuf, ENGINE_API_ERROR_MAX, "out of memory");
        return -1;
    }
    snprintf(url, urlcap, "http://localhost/v%s%s", api->version, path);

    struct curl_slist *hdrs = NULL;
    bool ok = true;
    if (body != NULL)
        ok = (hdrs = curl_slist_append(hdrs, "Content-Type: application/json")) != NULL;
    /* No "Expect: 100-continue" round trip for bodies. */
    struct curl_slist *t = ok ? curl_slist_append(hdrs, "Expect:") : NULL;
    ok = t != NULL;
    if (ok)
        hdrs = t;
    for (size_t i = 0; ok && headers != NULL && headers[i] != NULL && i < 16; i++) {
        t = curl_slist_append(hdrs, headers[i]);
        ok = t != NULL;
        if (ok)
            hdrs = t;
    }
    if (!ok) {
        curl_slist_free_all(hdrs);
        free(url);
        snprintf(errbuf, ENGINE_API_ERROR_MAX, "out of memory");
        return -1;
    }

    berth__curl_buffer_t buf = {.max = ENGINE_API_BODY_MAX};
    char curl_err[CURL_ERROR_SIZE] = "";
    berth__curl_options_t how = {
        .timeout_ms = timeout_s * 1000,
        .connect_timeout_ms = ENGINE_API_CONNECT_TIMEOUT_S * 1000L,
        .unix_socket = api->socket_path,
    };
    berth__curl_setup(c, &how);
    berth__curl_buffer_attach(c, &buf);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    /* A stream that delivers nothing for two minutes is dead. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    /* The handle must not keep pointers to this call's stack and headers. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    free(url);
    if (rc != CURLE_OK) {
        if (buf.too_big)
            snprintf(errbuf, ENGINE_API_ERROR_MAX, "response larger than %u bytes",
                     ENGINE_API_BODY_MAX);
        else
            snprintf(errbuf, ENGINE_API_ERROR_MAX, "%s: %s", curl_easy_strerror(rc),
                     curl_err[0] ? curl_err : "no detail");
        berth__curl_buffer_free(&buf);
        return -1;
    }
    if (berth__curl_buffer_finish(&buf) != 0) {
        snprintf(errbuf, ENGINE_API_ERROR_MAX, "out of memory");
        return -1;
    }
    resp->status = status;
    resp->body = buf.data;
    resp->len = buf.len;
    return 0;
}

void engine_response_free(engine_response_t *resp)
{
    if (resp == NULL)
        return;
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}

void engine_response_message(const engine_response_t *resp, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
    if (resp == NULL || resp->body == NULL)
        return;
    json_t *j = json_loadb(resp->body, resp->len, 0, NULL);
    const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
    if (m == NULL && j != NULL)
        m = json_string_value(json_object_get(j, "cause"));
    if (m != NULL) {
        snprintf(buf, cap, "%s", m);
    } else {
        snprintf(buf, cap, "%.*s", (int)(resp->len < cap ? resp->len : cap - 1), resp->body);
        /* One line is enough in a message. */
        for (char *p = buf; *p; p++)
            if (*p == '\n' || *p == '\r')
                *p = ' ';
    }
    json_decref(j);
}

char *engine_api_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[k++] = (char)c;
        } else {
            out[k++] = '%';
            out[k++] = hex[c >> 4];
            out[k++] = hex[c & 15];
        }
    }
    out[k] = '\0';
    return out;
}

void engine_demux(char *data, size_t *len)
{
    size_t n = *len;
    if (n < 8 || (data[0] != 0 && data[0] != 1 && data[0] != 2) || data[1] != 0 ||
        data[2] != 0 || data[3] != 0)
        return;
    size_t in = 0, out = 0;
    while (in + 8 <= n) {
        const unsigned char *h = (const unsigned char *)data + in;
        size_t flen = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
        in += 8;
        if (flen > n - in)
            flen = n - in;
        memmove(data + out, data + in, flen);
        out += flen;
        in += flen;
    }
    *len = out;
}
