/*
 * httphead.c: finds the end of a request's head in its raw bytes, as they
 * arrive (see httphead.h).  The bytes are a client's and may be anything:
 * this must never read past the n bytes it is given, never keep a pointer
 * to them, and never depend on how they were split into calls.
 */
#include "httphead.h"

/* Contract: httphead.h. */
void bd_head_start(bd_head_t *h)
{
    h->bytes = 0;
    h->done = false;
    h->line_empty = true;
}

/* Contract: httphead.h. */
size_t bd_head_scan(bd_head_t *h, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && !h->done) {
        if (p[i] == '\n') {
            h->done = h->line_empty;
            h->line_empty = true;
        } else if (p[i] != '\r') {
            h->line_empty = false;
        }
        i++;
    }
    h->bytes += i;
    return i;
}
