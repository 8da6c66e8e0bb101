/*
 * lib/random.c: the kernel's random bytes, as bytes, hex and UUIDs (see
 * random.h).
 *
 * It must never produce a byte that did not come from getrandom(2), and
 * never block for more than the kernel's own first seeding at boot.
 */
#include "random.h"

#include <errno.h>
#include <stdio.h>
#include <sys/random.h>

/* Contract: random.h. */
int berth__random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(p + got, len - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            /* Never seen from Linux; a zero would otherwise loop for ever. */
            errno = EIO;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static void to_hex(const unsigned char *b, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Contract: random.h. */
int berth__random_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    size_t done = 0;
    while (done < nbytes) {
        size_t chunk = nbytes - done < sizeof b ? nbytes - done : sizeof b;
        if (berth__random_bytes(b, chunk) != 0) {
            out[0] = '\0';
            return -1;
        }
        to_hex(b, chunk, out + 2 * done);
        done += chunk;
    }
    out[2 * nbytes] = '\0';
    return 0;
}

/* Contract: random.h. */
int berth__random_uuid(char out[37])
{
    unsigned char b[16];
    if (berth__random_bytes(b, sizeof b) != 0) {
        out[0] = '\0';
        return -1;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
