/*
 * secrets.c: berthd's rule for the secrets of a document it stores
 * (secrets.h): every container group's and profile's document goes
 * through bd_group_seal() between its checks and its commit, every NGroup
 * body through bd_ngroup_body_seal() before it is read, so that
 * Redis, its AOF and the change log only ever hold sealed secrets.
 *
 * It must never name a secret's value, and never let a document with a
 * secret through unsealed.
 */
#include <jansson.h>

#include "secrets.h"

static int key_required(const char *path, berth_error_t *err)
{
    return berth_error_set(err, BERTH_EINVAL, "SecretsKeyRequired", path,
                           "the document holds a secret at %s, and this berthd stores none: "
                           "it runs without --secrets-key, so a secret would reach Redis in "
                           "clear", path);
}

/* Contract: secrets.h. */
int bd_group_seal(const berth__keyring_t *ring, berth_group_t *g, berth_error_t *err)
{
    if (ring != NULL)
        return berth__seal_group(ring, g, err);
    char path[BERTH_ERROR_TARGET_MAX];
    return berth__secrets_any(g, path, sizeof path) ? key_required(path, err) : 0;
}

/* Contract: secrets.h. */
int bd_ngroup_body_seal(const berth__keyring_t *ring, const char *text, size_t len, char **out,
                        berth_error_t *err)
{
    *out = NULL;
    json_t *body = json_loadb(text, len, 0, NULL);
    json_t *cgp = json_object_get(
        json_array_get(json_object_get(json_object_get(body, "properties"),
                                       "containerGroupProfiles"),
                       0),
        "containerGroupProperties");
    char path[BERTH_ERROR_TARGET_MAX];
    int n = json_is_object(cgp)
                ? berth__seal_properties(ring, cgp,
                                         "properties.containerGroupProfiles[0]."
                                         "containerGroupProperties.",
                                         path, sizeof path, err)
                : 0;
    int rc = n < 0 ? n : 0;
    if (n > 0 && ring == NULL) {
        rc = key_required(path, err);
    } else if (n > 0) {
        *out = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (*out == NULL)
            rc = berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    json_decref(body);
    return rc;
}

