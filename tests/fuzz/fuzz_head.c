/*
 * fuzz_head.c: libFuzzer target for berthd's own reading of a request's
 * raw head (tools/berthd/httphead.c), which bounds the head before
 * libevent's evhttp parses its request line and headers.
 *
 * The input: a byte that chooses how the rest is split (as reads from a
 * socket split it), then the bytes a client sends on a connection.  They
 * are scanned whole, then piece by piece in the chosen split, each piece
 * in a heap block of exactly its size.  Invariants: both scans agree;
 * they end the head where a plain reading of the rule says (after the
 * first '\n' whose line holds nothing but '\r'), or take every byte when
 * there is no such line; a finished scan takes nothing more.
 */
#include <string.h>

#include "fuzz.h"
#include "httphead.h"

/* The rule, read plainly: the head's length (*ended true), or n when it
 * does not end in these bytes. */
static size_t head_end(const uint8_t *p, size_t n, bool *ended)
{
    *ended = true;
    size_t line = 0;                /* where the current line starts         */
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\n')
            continue;
        size_t j = line;
        while (j < i && p[j] == '\r')
            j++;
        if (j == i)
            return i + 1;
        line = i + 1;
    }
    *ended = false;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint32_t seed = data[0];
    data++;
    size--;

    bd_head_t whole;
    bd_head_start(&whole);
    size_t took = bd_head_scan(&whole, (const char *)data, size);
    bool ended;
    size_t end = head_end(data, size, &ended);
    FUZZ_CHECK(took == end && whole.bytes == end && whole.done == ended);
    if (whole.done)
        FUZZ_CHECK(bd_head_scan(&whole, (const char *)data, size) == 0 && whole.bytes == end);

    /* Piece by piece: 1 to 64 bytes at a time, sizes from a small LCG. */
    bd_head_t parts;
    bd_head_start(&parts);
    size_t at = 0, sum = 0;
    while (at < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 64;
        if (n > size - at)
            n = size - at;
        char *piece = malloc(n);
        FUZZ_CHECK(piece != NULL);
        memcpy(piece, data + at, n);
        size_t t = bd_head_scan(&parts, piece, n);
        free(piece);
        FUZZ_CHECK(t <= n && (t == n || parts.done));
        sum += t;
        at += n;
    }
    FUZZ_CHECK(sum == took && parts.bytes == whole.bytes && parts.done == whole.done);
    return 0;
}
