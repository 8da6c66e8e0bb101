/*
 * secrets.h: berthd's rule for the secrets of a document it stores
 * (secrets.c): sealed under --secrets-key (lib/seal.h), or refused when
 * berthd has no key: container groups', profiles' and NGroups' documents.  Pure: no I/O; it never names a secret's value.
 */
#ifndef BERTHD_SECRETS_H
#define BERTHD_SECRETS_H

#include "berth.h"
#include "lib/seal.h"

/* Seals every secret of `g`, a document about to be stored (a container
 * group's, a profile's, an NGroup's template), under `ring` (lib/seal.h)
 * so that Redis never holds one in clear.  A value already sealed under
 * `ring` is kept.  Without a ring (berthd has no --secrets-key) a document
 * holding a secret is refused: BERTH_EINVAL "SecretsKeyRequired", target
 * the first secret's JSON path (its value never named), `g` unchanged.
 * BERTH_ENOMEM.  Returns 0 with every secret of `g` sealed. */
int bd_group_seal(const berth__keyring_t *ring, berth_group_t *g, berth_error_t *err);

/* The NGroup body text[0..len) (a PUT's, or a PATCH merged over the
 * stored body) with the secrets of its
 * properties.containerGroupProfiles[0].containerGroupProperties sealed
 * under `ring`, so that neither the NGroup's stored body nor its template
 * holds one in clear: a new text in *out (free()), or NULL when there is
 * nothing to seal (or the body does not parse: its reader says why).
 * Without a ring, a secret there is refused as bd_group_seal() refuses
 * one.  Returns 0, BERTH_EINVAL or BERTH_ENOMEM with err. */
int bd_ngroup_body_seal(const berth__keyring_t *ring, const char *text, size_t len, char **out,
                        berth_error_t *err);

#endif /* BERTHD_SECRETS_H */
