/*
 * digest.c: SHA-1 in hex through OpenSSL (digest.h).
 *
 * This file must never do I/O.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "digest.h"

/* Contract: digest.h. */
void bd_sha1_hex(const char *s, size_t len, char out[BD_SHA1_HEX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, len, d);
    for (size_t i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[BD_SHA1_HEX] = '\0';
}

/* Contract: digest.h. */
void bd_document_digest(const char *doc, char out[BD_SHA1_HEX + 1])
{
    bd_sha1_hex(doc, strlen(doc), out);
}
