/*
 * wsproto.c: berthd's WebSocket exec protocol as pure functions (see
 * wsproto.h): header tokens, the handshake key, the password body, the
 * channels and terminal sizes of a client's messages.
 *
 * Every input here comes from a client and may be anything: it must never
 * read past a message's length, never trust a message to be a C string or
 * UTF-8, never keep a pointer to it, and never do I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "wsproto.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Contract: wsproto.h. */
bool bd_ws_has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (v != NULL && *v != '\0') {
        v += strspn(v, " \t,");
        size_t len = strcspn(v, ",");
        size_t end = len;
        while (end > 0 && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end == n && strncasecmp(v, token, n) == 0)
            return true;
        v += len;
    }
    return false;
}

/* Contract: wsproto.h. */
bool bd_ws_accept_key(const char *key, char out[32])
{
    unsigned char raw[24];
    if (strlen(key) != 24 || EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18 ||
        key[22] != '=' || key[23] != '=')
        return false;
    char buf[24 + sizeof WS_GUID];
    snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
    unsigned char sha[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf, strlen(buf), sha);
    EVP_EncodeBlock((unsigned char *)out, sha, SHA_DIGEST_LENGTH);
    return true;
}

/* Contract: wsproto.h. */
char *bd_ws_password_body(const uint8_t *msg, size_t len)
{
    /* A NUL byte would be "\u0000", which the route's JSON reader refuses:
     * such a password is sent as "" too, rather than as a body berthd's
     * own reader cannot read. */
    json_t *b = len <= BD_WS_PASSWORD_MAX && (len == 0 || memchr(msg, '\0', len) == NULL)
                    ? json_pack("{s:s%}", "password", (const char *)msg, len)
                    : NULL;
    if (b == NULL)
        b = json_pack("{s:s}", "password", "");
    char *body = b != NULL ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return body;
}

/* Contract: wsproto.h. */
bool bd_ws_split(bool channels, const uint8_t *msg, size_t len, uint8_t *kind,
                 const uint8_t **bytes, size_t *n)
{
    uint8_t k = BD_WS_INPUT;
    if (channels) {
        if (len == 0 || msg[0] > BD_WS_RESIZE)
            return false;
        k = msg[0];
        msg++;
        len--;
    }
    if (k == BD_WS_INPUT && len == 0)
        return false;
    *kind = k;
    *bytes = msg;
    *n = len;
    return true;
}

/* Contract: wsproto.h. */
bool bd_ws_resize_parse(const uint8_t *bytes, size_t len, uint16_t *rows, uint16_t *cols)
{
    char size[24];
    unsigned r = 0, c = 0;
    snprintf(size, sizeof size, "%.*s", (int)(len < 23 ? len : 23), (const char *)bytes);
    if (sscanf(size, "%u %u", &r, &c) != 2 || r > BD_WS_TERM_MAX || c > BD_WS_TERM_MAX)
        return false;
    *rows = (uint16_t)r;
    *cols = (uint16_t)c;
    return true;
}
