/*
 * lib/curl.c: an easy handle's common set-up and a bounded body buffer
 * (see curl.h).
 *
 * It never performs a transfer and never grows a buffer past its bound.
 */
#include "curl.h"

#include <stdlib.h>
#include <string.h>

/* Contract: curl.h. */
CURLcode berth__curl_setup(CURL *h, const berth__curl_options_t *opts)
{
    static const berth__curl_options_t defaults;
    const berth__curl_options_t *o = opts != NULL ? opts : &defaults;
    CURLcode rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (rc == CURLE_OK && o->timeout_ms > 0)
        rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (rc == CURLE_OK && o->connect_timeout_ms > 0)
        rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
    if (rc == CURLE_OK && o->unix_socket != NULL)
        rc = curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, o->unix_socket);
    if (rc == CURLE_OK && o->insecure) {
        rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (rc == CURLE_OK && o->cacert != NULL) {
        rc = curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
    }
    return rc;
}

/* Contract: curl.h. */
size_t berth__curl_buffer_write(char *data, size_t size, size_t nmemb, void *buffer)
{
    berth__curl_buffer_t *b = buffer;
    size_t n = size * nmemb;
    if (b->max > 0 && (n > b->max || b->len > b->max - n)) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Contract: curl.h. */
void berth__curl_buffer_attach(CURL *h, berth__curl_buffer_t *buffer)
{
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, berth__curl_buffer_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, buffer);
}

/* Contract: curl.h. */
int berth__curl_buffer_finish(berth__curl_buffer_t *buffer)
{
    if (buffer->data != NULL)
        return 0;
    buffer->data = calloc(1, 1);
    if (buffer->data == NULL)
        return -1;
    buffer->len = 0;
    buffer->cap = 1;
    return 0;
}

/* Contract: curl.h. */
void berth__curl_buffer_free(berth__curl_buffer_t *buffer)
{
    if (buffer == NULL)
        return;
    free(buffer->data);
    memset(buffer, 0, sizeof *buffer);
}
