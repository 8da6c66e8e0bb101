/*
 * lib/seal.h: the secrets of a container-group document sealed at rest
 * (AES-256-GCM through OpenSSL), for berthd (which seals before it stores),
 * berth-agent (which unseals just before it hands a group to its runtime)
 * and `berthctl fsck` (which reports a secret stored in clear).
 *
 * A KEY FILE holds one key a line, "KEYID KEY": KEYID is 1 to 32 of
 * [A-Za-z0-9._-], KEY is 256 bits as 64 hex digits or as base64 (44
 * characters).  Blank lines and lines starting with '#' are skipped.  The
 * first key seals; every key unseals what was sealed under its id, so a
 * key is rotated by putting a new first line and keeping the old ones.
 * The file must be a regular file that neither group nor others may read.
 *
 * A SEALED VALUE is "berth/sealed/v1/" followed by the standard base64 of
 * (key id length: 1 byte | key id | nonce: 12 bytes | ciphertext | tag: 16
 * bytes).  The whole text is itself canonical base64, so a sealed secret
 * volume file passes the document's checks like a clear one.  The key id is
 * the additional authenticated data.  The nonce is the first 12 bytes of
 * an HMAC-SHA-256 of the clear value under a key derived from the sealing
 * key: sealing is deterministic (a synthetic nonce), so the same document
 * sealed twice under the same key is the same text.  That keeps what
 * berthd and the agents compare by digest (a PUT of the document a group
 * already runs, a standby pool's template, the runtime digest) working on
 * sealed documents; its cost is that two equal secrets sealed under one
 * key look equal to a reader of Redis.
 *
 * THE SECRETS of a document: each environment variable's secureValue (of
 * containers and init containers), each secret volume's file contents,
 * each azureFile volume's storageAccountKey, each registry credential's
 * password, properties.diagnostics.logAnalytics.workspaceKey, and each
 * extension's properties.protectedSettings (sealed as the text of its JSON
 * value).
 *
 * Nothing here does I/O but berth__keyring_load(); nothing here ever logs,
 * prints or puts a key or a secret's value into an error message.
 */
#ifndef BERTH_LIB_SEAL_H
#define BERTH_LIB_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "berth.h"

#define BERTH__SEAL_PREFIX "berth/sealed/v1/"
#define BERTH__SEAL_KEY_ID_MAX 32   /* bytes in a key id                    */
#define BERTH__SEAL_KEYS_MAX 64     /* keys in one key file                 */

typedef struct berth__keyring berth__keyring_t;

/* Reads the key file at `path` into a new keyring in *out (free with
 * berth__keyring_free()).  Refuses a file that is not regular or that
 * group or others may read, a file without a key, a malformed line, a key
 * that is not 256 bits, and a key id given twice: BERTH_EINVAL with err's
 * message naming "PATH:LINE" (never the key); BERTH_EIO when the file
 * cannot be read; BERTH_ENOMEM.  *out is NULL on failure. */
int berth__keyring_load(const char *path, berth__keyring_t **out, berth_error_t *err);

/* Wipes and frees a keyring.  Accepts NULL. */
void berth__keyring_free(berth__keyring_t *ring);

/* The id of the key that seals (the key file's first). */
const char *berth__keyring_sealing_id(const berth__keyring_t *ring);

/* Whether `s` has the sealed prefix (it says nothing of whether it unseals). */
bool berth__sealed_is(const char *s);

/* Seals `clear` under the ring's first key into a new string in *out
 * (free()).  Returns 0 or BERTH_ENOMEM (*out NULL). */
int berth__seal(const berth__keyring_t *ring, const char *clear, char **out);

/* Unseals `sealed` into a new NUL-terminated string in *out (free() it;
 * wipe it first).  BERTH_EINVAL when `sealed` is not a sealed value
 * ("SecretNotSealed"), is malformed ("SecretMalformed"), names a key id
 * the ring does not hold ("SecretKeyUnknown", the id in the message) or
 * fails authentication: tampered, or sealed under another key of that id
 * ("SecretTampered"); a clear value holding a NUL byte is malformed.
 * BERTH_ENOMEM.  *out is NULL on failure. */
int berth__unseal(const berth__keyring_t *ring, const char *sealed, char **out,
                  berth_error_t *err);

/* Seals every secret of `group` in place (see THE SECRETS): a value that
 * already unseals under `ring` is kept as it is (a profile's document
 * merged into a request), every other value is sealed, whatever it looks
 * like.  Returns 0, or BERTH_ENOMEM / BERTH_EINVAL (a verbatim member that
 * is not JSON) with err; the group may then be partly sealed: discard it. */
int berth__seal_group(const berth__keyring_t *ring, berth_group_t *group, berth_error_t *err);

/* Unseals every sealed secret of `group` in place; a value not sealed is
 * kept as it is (a document stored before the cell had a key).  `ring` may
 * be NULL: then any sealed value fails.  Returns 0, or the first failure
 * of berth__unseal() with err's target the secret's JSON path (and the
 * message "no key file was given" when ring is NULL); the group may then
 * be partly unsealed: discard it. */
int berth__unseal_group(const berth__keyring_t *ring, berth_group_t *group,
                        berth_error_t *err);

/* Calls cb with the JSON path of each secret of `group` stored in clear
 * (not sealed), in document order; stops when cb returns non-zero.
 * Returns the number of clear secrets seen, or BERTH_ENOMEM /
 * BERTH_EINVAL (a verbatim member that is not JSON). */
typedef int (*berth__secret_path_cb)(const char *path, void *data);
int berth__secrets_clear(const berth_group_t *group, berth__secret_path_cb cb, void *data);

/* The JSON path of the first secret of `group` into path[0..size), or
 * "" when it has none.  Returns whether it has one. */
bool berth__secrets_any(const berth_group_t *group, char *path, size_t size);

/* For a container group's `properties` object that is not a whole
 * document (an NGroup's containerGroupProperties): with `ring`, seals its
 * secrets in place as berth__seal_group() does; without, changes nothing
 * and puts the JSON path of its first secret, `prefix` (e.g.
 * "properties.") before the path inside `properties`, in path[0..size)
 * ("" for none).  Returns the number of secrets it holds (sealed or not),
 * or BERTH_ENOMEM with err (the path of the secret at fault in its
 * target); on failure `properties` may be partly sealed: discard it. */
int berth__seal_properties(const berth__keyring_t *ring, json_t *properties, const char *prefix,
                           char *path, size_t size, berth_error_t *err);

/* berth_group_free() of a group whose secrets are in clear (an unsealed
 * copy), each secret's bytes wiped first.  Accepts NULL. */
void berth__group_free_wiped(berth_group_t *group);

/* Drops every secret (sealed or not) of a container group's `properties`
 * object in place, for an answer: a secret volume keeps its kind and
 * loses its files, as berth_group_to_json() redacts. */
void berth__redact_properties(json_t *properties);

#endif
