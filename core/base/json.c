/*
 * json.c: the one door through which untrusted JSON enters libberth.
 *
 * Checks size, UTF-8 and nesting depth in a single linear pass before the
 * document reaches jansson, so that a hostile document is refused with a
 * clear error and bounded work, never a crash or a deep recursion.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"

/* Length of the valid UTF-8 sequence starting at s (at most `left` bytes),
 * or 0 when it is not valid: overlong forms, surrogates and code points above
 * U+10FFFF are refused (RFC 3629). */
static size_t utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* One pass: UTF-8 validity everywhere, and the deepest nesting of arrays
 * and objects outside strings.  Returns 0 or an error code with *err set. */
static int prescan(const char *json, size_t len, size_t max_depth, berth_error_t *err)
{
    const unsigned char *s = (const unsigned char *)json;
    size_t depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_sequence(s + i, len - i);
            if (n == 0)
                return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                        "the request content is not valid UTF-8 "
                                        "(byte 0x%02x at offset %zu)", c, i);
            i += n;
            continue;
        }
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character; \u escapes are ASCII */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return berth__error_set(err, BERTH_ETOOBIG, "RequestNestingTooDeep", "",
                                        "the request content nests arrays and objects "
                                        "more than %zu deep", max_depth);
        } else if (c == ']' || c == '}') {
            if (depth > 0)
                depth--;
        }
        i++;
    }
    return 0;
}

int berth__json_load(const char *json, size_t len, size_t max_bytes,
                     size_t max_depth, json_t **out, berth_error_t *err)
{
    *out = NULL;
    if (json == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                "the request content is missing");
    if (len > max_bytes)
        return berth__error_set(err, BERTH_ETOOBIG, "RequestTooLarge", "",
                                "the request content is %zu bytes; at most %zu are accepted",
                                len, max_bytes);
    int rc = prescan(json, len, max_depth, err);
    if (rc != 0)
        return rc;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                "the request content is not valid JSON: %s "
                                "(line %d, column %d)", jerr.text, jerr.line, jerr.column);
    if (!json_is_object(root) && !json_is_array(root)) {
        json_decref(root);
        return berth__error_set(err, BERTH_EINVAL, "InvalidRequestContent", "",
                                "the request content must be a JSON object or array");
    }
    *out = root;
    return 0;
}
