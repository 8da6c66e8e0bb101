/*
 * digest.h: the SHA-1 of a text in hex, as Redis's sha1hex() writes it --
 * the guard of a record's commit (records.c) and the digest a resource
 * record keeps of its group's document (records.h), shared by berthd and
 * `berthctl fsck`.
 *
 * Pure: no I/O, no allocation.
 */
#ifndef BERTHD_DIGEST_H
#define BERTHD_DIGEST_H

#include <stddef.h>

#define BD_SHA1_HEX 40

/* SHA-1 of s[0..len-1] into out: 40 lowercase hex digits and a NUL. */
void bd_sha1_hex(const char *s, size_t len, char out[BD_SHA1_HEX + 1]);

/* The digest a resource record keeps of its group's document (`digest`):
 * bd_sha1_hex() of the NUL-terminated text. */
void bd_document_digest(const char *doc, char out[BD_SHA1_HEX + 1]);

#endif /* BERTHD_DIGEST_H */
