/*
 * lib/base64.h: base64 (RFC 4648) for Berth's tools, plugins and libberth's
 * validator: encoding in the standard or URL alphabet, a strict validity
 * check, and a lenient decoder.
 *
 * Pure functions over memory: they never do I/O, never keep state, and
 * never accept input they cannot decode to the byte.  libberth compiles this
 * file in (hidden, not exported), so it must never depend on anything but
 * the C library.
 */
#ifndef BERTH_LIB_BASE64_H
#define BERTH_LIB_BASE64_H

#include <stdbool.h>
#include <stddef.h>

typedef enum berth__base64_alphabet {
    BERTH__BASE64_STANDARD = 0,     /* '+' and '/' (section 4)              */
    BERTH__BASE64_URL               /* '-' and '_' (section 5)              */
} berth__base64_alphabet_t;

/* Encodes data[0..len) in `alphabet`, padded with '=' to a multiple of
 * four characters.  Returns a new NUL-terminated string (free() it; wipe it
 * first when it holds a secret), or NULL when out of memory. */
char *berth__base64_encode(const void *data, size_t len, berth__base64_alphabet_t alphabet);

/* Whether `s` is canonical standard base64: a multiple of four characters
 * from the standard alphabet, with at most two '=' and only at the end.
 * The empty string is valid. */
bool berth__base64_is_valid(const char *s);

/* Decodes `in`, leniently: either alphabet, padding optional, whitespace
 * (space, tab, CR, LF) ignored.  Rejects any other character, data after
 * '=', more than two '=', and a length that leaves a lone six-bit group.
 * Returns 0 with *out a new buffer of *outlen bytes (free() it), or -1 for
 * malformed input or no memory (*out untouched). */
int berth__base64_decode(const char *in, unsigned char **out, size_t *outlen);

#endif
