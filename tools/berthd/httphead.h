/*
 * httphead.h: berthd's own reading of a request's raw head, before evhttp
 * parses it: where the head ends (its blank line), so that the server can
 * bound it (BD_HEADERS_MAX, server_conn.c) however its bytes arrive.  The
 * request line and headers themselves are parsed by libevent's evhttp.
 * Pure: no I/O, no allocation; the scan's state is the caller's.
 */
#ifndef BERTHD_HTTPHEAD_H
#define BERTHD_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>

/* A head being scanned.  Start it with bd_head_start(); the members are
 * read by the caller, written only by bd_head_*(). */
typedef struct bd_head {
    size_t bytes;                   /* of the head so far, to its blank line */
    bool done;                      /* its blank line was seen              */
    bool line_empty;                /* nothing but '\r' since the last '\n' */
} bd_head_t;

/* Starts the scan of a new request's head. */
void bd_head_start(bd_head_t *h);

/* Scans the next n bytes at p of the request (any split of its bytes into
 * calls gives the same result).  The head ends at the first '\n' whose
 * line holds nothing but '\r' (a line of "\r" counts as blank: a head that
 * evhttp would not end there stays within evhttp's own, slightly larger,
 * limit all the same; a request's first line may be that blank line).
 * Adds the bytes of the head among them to h->bytes and returns that
 * count (n unless the head ended inside them); once h->done, returns 0. */
size_t bd_head_scan(bd_head_t *h, const char *p, size_t n);

#endif /* BERTHD_HTTPHEAD_H */
