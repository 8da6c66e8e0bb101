/*
 * secrets.c: berthd's rule for the secrets of a document it stores
 * (secrets.h): every container group's and profile's document goes
 * through bd_group_seal() between its checks and its commit, so that
 * Redis, its AOF and the change log only ever hold sealed secrets.
 *
 * It must never name a secret's value, and never let a document with a
 * secret through unsealed.
 */
#include "secrets.h"

/* Contract: secrets.h. */
int bd_group_seal(const berth__keyring_t *ring, berth_group_t *g, berth_error_t *err)
{
    if (ring != NULL)
        return berth__seal_group(ring, g, err);
    char path[BERTH_ERROR_TARGET_MAX];
    if (!berth__secrets_any(g, path, sizeof path))
        return 0;
    return berth_error_set(err, BERTH_EINVAL, "SecretsKeyRequired", path,
                           "the document holds a secret at %s, and this berthd stores none: "
                           "it runs without --secrets-key, so a secret would reach Redis in "
                           "clear", path);
}

