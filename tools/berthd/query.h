/*
 * query.h: berthd's query strings and URL encoding, through libevent's
 * evhttp (evhttp_uridecode, evhttp_uriencode).  Pure: no I/O, no event
 * loop, safe from any thread.
 */
#ifndef BERTHD_QUERY_H
#define BERTHD_QUERY_H

#include <stddef.h>

/* Finds query parameter `name` (exact, case-sensitive; the first one when
 * named twice) in the raw query string (NULL: none) and stores its
 * percent-decoded value ('+' decodes to a space) in out[cap].  Returns 1
 * when present ("name" alone: an empty value), 0 when absent, -1 when its
 * value is malformed (a '%' not followed by two hex digits, an encoded NUL)
 * or does not fit.  Other parameters are not looked at. */
int bd_query_get(const char *query, const char *name, char *out, size_t cap);

/* Finds a parameter named twice in the raw query string (NULL: none):
 * names are compared as sent, exactly (as bd_query_get() finds them).
 * Returns 1 and the first such name (truncated; bytes outside printable
 * ASCII as '?') in name[cap], 0 when every
 * name is given once, -1 when memory ran out.  O(n log n) in the number of
 * parameters. */
int bd_query_duplicate(const char *query, char *name, size_t cap);

/* Percent-encodes `s` (unreserved characters kept, the others as %XX in
 * upper case) into out[cap].  Returns 0, or -1 when it does not fit or
 * memory ran out. */
int bd_urlencode(const char *s, char *out, size_t cap);

#endif /* BERTHD_QUERY_H */
