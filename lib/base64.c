/*
 * lib/base64.c: base64 encoding, validation and decoding (see base64.h).
 *
 * It must never read past the NUL of its input nor write past the buffers
 * it sizes itself, and never call anything but the C library: libberth
 * links this file.
 */
#include "base64.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char standard_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Contract: base64.h. */
char *berth__base64_encode(const void *data, size_t len, berth__base64_alphabet_t alphabet)
{
    const char *digits = alphabet == BERTH__BASE64_URL ? url_alphabet : standard_alphabet;
    const unsigned char *in = data;
    if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[k++] = digits[(v >> 18) & 63];
        out[k++] = digits[(v >> 12) & 63];
        out[k++] = digits[(v >> 6) & 63];
        out[k++] = digits[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        out[k++] = digits[(v >> 18) & 63];
        out[k++] = digits[(v >> 12) & 63];
        out[k++] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
    return out;
}

/* Contract: base64.h. */
bool berth__base64_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        return false;
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool digit = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                     (c >= '0' && c <= '9') || c == '+' || c == '/';
        if (c == '=') {
            /* Padding only at the end, at most two. */
            if (i + 2 < n)
                return false;
            pad++;
        } else if (!digit || pad > 0) {
            return false;
        }
    }
    return pad <= 2;
}

/* The six-bit value of a digit of either alphabet, or -1. */
static int digit_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Contract: base64.h. */
int berth__base64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *buf = malloc(n / 4 * 3 + 4);
    if (buf == NULL)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t len = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = digit_value(c);
        if (v < 0 || pad > 0) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (unsigned char)(acc >> bits);
        }
    }
    /* Six leftover bits cannot make a byte: the input was cut. */
    if (bits >= 6 || pad > 2) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}
