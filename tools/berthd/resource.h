/*
 * resource.h: berthd's ARM path helpers (names, segments) and request
 * header and body readers.  Query strings and percent-encoding are
 * query.h's; the api-versions and what each one has, apiversions.h's.
 *
 * Pure: nothing here does I/O.  berthd's records in Redis are records.h's.
 */
#ifndef BERTHD_RESOURCE_H
#define BERTHD_RESOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define BD_SUB_MAX 64
#define BD_RG_MAX 90
#define BD_LOCATION_MAX 64
#define BD_KEY_MAX (BD_SUB_MAX + BD_RG_MAX + 63 + 3)
#define BD_ID_HEX 32                /* operation and exec ids: 128 bits     */

/* Whether `name` is a valid container-group (or container) name: 1-63
 * characters of [a-z0-9-], not starting or ending with '-'. */
bool bd_valid_group_name(const char *name);

/* Whether `s` is a valid subscription id segment: 1-64 of [A-Za-z0-9-]. */
bool bd_valid_subscription(const char *s);

/* Whether `s` is a valid resource-group name (ARM's rules restricted to
 * ASCII): 1-90 of letters, digits, '-', '_', '.', '(' and ')', not ending
 * with '.'. */
bool bd_valid_resource_group(const char *s);

/* Whether `s` is a valid location segment: 1-64 of letters, digits, ' '. */
bool bd_valid_location(const char *s);

/* Whether `s` is exactly BD_ID_HEX lowercase hex digits. */
bool bd_valid_hex_id(const char *s);

/* Copies `s` lowercased, without spaces (ARM's location normalisation:
 * "West US" -> "westus"), into out[cap]. */
void bd_location_norm(const char *s, char *out, size_t cap);

/* Copies `s` lowercased into out[cap] (truncating). */
void bd_lower(const char *s, char *out, size_t cap);

/* The cell's key of resource `name` in resource group `rg` of
 * subscription `sub`: "<sub>/<rg>/<name>", subscription and resource group
 * lowercased (ARM compares them without case), into out[cap]
 * (truncating).  `name` "" gives the resource group's prefix
 * "<sub>/<rg>/". */
void bd_resource_key(const char *sub, const char *rg, const char *name, char *out, size_t cap);

/* The name of `key` when it is a resource directly in the resource group
 * whose prefix (bd_resource_key() with name "") is prefix[plen], else
 * NULL. */
const char *bd_key_child(const char *key, const char *prefix, size_t plen);

/* Splits a percent-decoded path into at most `max` segments stored in
 * seg[] (pointing into buf[cap], a copy).  Refuses (returns -1) an empty
 * segment, "." or "..", a control or non-ASCII byte, a path longer than
 * cap-1 or with more than `max` segments.  Returns the number of segments. */
int bd_path_split(const char *path, char *buf, size_t cap, char **seg, int max);

/* Fills out[BD_ID_HEX + 1] with a new random id from the kernel
 * (lib/random.h).  Returns 0, or -1 with errno set and out empty when
 * getrandom() fails: the caller fails its request. */
int bd_random_id(char *out);

/* Whether two NUL-terminated strings are equal, comparing their bytes in
 * time independent of where they differ (OpenSSL's CRYPTO_memcmp); strings
 * of different lengths are unequal at once (a length is not secret). */
bool bd_secret_equal(const char *a, const char *b);

/* ---- request headers and bodies (pure: no Redis) ------------------------------------ */

/* Whether a header value may be kept and sent back: no control byte, at
 * most 256 bytes. */
bool bd_header_value_ok(const char *v);

/* The token of an "Authorization: Bearer TOKEN" value (scheme matched
 * without case, spaces before the token skipped), pointing into
 * `authorization`; NULL when the value is not a bearer token or is empty. */
const char *bd_bearer_token(const char *authorization);

/* Whether `path` names a subscription ("/subscriptions/SUB[/...]",
 * prefix matched without case); stores where SUB starts and its length. */
bool bd_path_subscription(const char *path, const char **sub, size_t *len);

/* Reads a PATCH body, which may only hold "tags": an object of at most
 * BD_TAGS_MAX strings (names up to 512 bytes, values up to 256).  On
 * success stores a new reference to the tags object in *tags (NULL when the
 * body has none) and returns 0; otherwise returns -1 and points *target
 * ("" or "tags") and *why at static text. */
#define BD_TAGS_MAX 50
int bd_patch_body_parse(const char *body, size_t len, json_t **tags, const char **target,
                        const char **why);

/* An exec's terminal: the process runs under one when the body names a
 * terminalSize (ACI's clients always do), of that size (0: the runtime's
 * default). */
typedef struct bd_terminal {
    bool tty;
    uint16_t rows, cols;
} bd_terminal_t;

/* Reads an exec body {"command": "...", "terminalSize": {"rows", "cols"}}:
 * a command of 1 to 4096 bytes that bd_command_split() splits into 1 to
 * BD_COMMAND_WORDS_MAX words, an optional terminal size (whole numbers of
 * 0 to 1000) and nothing else.  On success stores a copy of the
 * command in *command (free()), the terminal in *term, and returns 0;
 * otherwise returns -1 with the member at fault in *target. */
int bd_exec_body_parse(const char *body, size_t len, char **command, bd_terminal_t *term,
                       const char **target);

/* Splits `words` in place into words as a POSIX shell splits a simple
 * command, expanding nothing: blanks (space, tab) separate words; '...'
 * keeps what it holds as it is; "..." too, but for a backslash before
 * " \\ $ or `, which keeps that character; a backslash elsewhere keeps the
 * character after it.  Stores at most `max` words in argv and returns
 * their number, or -1 for an unterminated quote, a trailing backslash or
 * more than `max` words. */
int bd_command_split(char *words, const char **argv, size_t max);

/* The words an exec's command may have. */
#define BD_COMMAND_WORDS_MAX 64

/* Reads a Redis URL: "unix:///PATH" (returns 1, the path in host[cap]) or
 * "redis://[USER@]HOST[:PORT]" (returns 0, host and *port; 6379 by
 * default; an IPv6 host in brackets).  Returns -1 for anything else. */
int bd_redis_url_parse(const char *url, char *host, size_t cap, int *port);

#endif /* BERTHD_RESOURCE_H */
