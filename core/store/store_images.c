/*
 * store_images.c: the loader that copies every host's image set from the
 * store's cell into the store's engine (berth_store_images_sync()), image
 * locality's input.
 *
 * Agents write the images their runtime holds to the SET
 * berth:{C}:images:<host> (hostlink.c, berth_hostlink_images_put()); the
 * engine keeps them per host as sorted hashes (engine.c,
 * berth_engine_host_images_set(), hashed by image_ref.c) for the chooser
 * (index.c).  The loader is blocking (one round trip per 256 hosts), for a
 * daemon's timer, never for the placement path.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store.h"

/* Hosts whose sets one transaction reads: one round trip per batch. */
#define SYNC_BATCH 256u

/* Sets host `host`'s images from SMEMBERS reply `r`.  0 or BERTH_ENOMEM
 * (BERTH_ENOENT, a host removed meanwhile, is no error). */
static int host_images_apply(berth_engine_t *e, const char *host, const redisReply *r,
                             berth_error_t *err)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return berth__error_set(err, BERTH_EIO, "RedisError", "images",
                                "the images of host '%s' are not a set", host);
    const char **names = malloc((r->elements > 0 ? r->elements : 1) * sizeof *names);
    if (names == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for the images of host '%s'", host);
    size_t n = 0;
    for (size_t i = 0; i < r->elements && n < BERTH_HOST_IMAGES_MAX; i++) {
        const redisReply *x = r->element[i];
        /* Members that are not image references are skipped: an agent's
         * set is data, never trusted to be well formed. */
        if (x->type == REDIS_REPLY_STRING && strlen(x->str) == x->len &&
            berth_image_hash(x->str) != 0)
            names[n++] = x->str;
    }
    int rc = berth_engine_host_images_set(e, host, names, n, err);
    free(names);
    return rc == BERTH_ENOENT ? 0 : rc;
}

/* Reads the sets of hosts first .. first + n - 1 (engine order) in one
 * transaction and loads them.  0, BERTH_EIO or BERTH_ENOMEM. */
static int batch_sync(berth_store_t *s, berth_engine_t *e, size_t first, size_t n,
                      berth_error_t *err)
{
    char (*names)[BERTH_NAME_MAX + 1] = malloc(n * sizeof *names);
    char (*keys)[BERTH__KEYNAME_MAX] = malloc(n * sizeof *keys);
    const char *(*argv)[2] = malloc(n * sizeof *argv);
    const char *const **argvs = malloc(n * sizeof *argvs);
    int *argcs = malloc(n * sizeof *argcs);
    int rc = 0;
    if (names == NULL || keys == NULL || argv == NULL || argvs == NULL || argcs == NULL) {
        rc = berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                              "no memory to read the hosts' images");
        goto out;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        berth_host_t h;
        if (berth_engine_host_at(e, first + i, &h, NULL) != 0)
            continue;
        snprintf(names[m], sizeof names[m], "%s", h.name);
        berth__store_key(s, keys[m], sizeof keys[m], "images:", names[m]);
        argv[m][0] = "SMEMBERS";
        argv[m][1] = keys[m];
        argvs[m] = argv[m];
        argcs[m] = 2;
        m++;
    }
    if (m == 0)
        goto out;
    redisReply *x = berth__store_transaction(s, m, argvs, argcs,
                                             "reading the hosts' images", err, &rc);
    if (x == NULL)
        goto out;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != m)
        rc = berth__error_set(err, BERTH_EIO, "RedisError", "images",
                              "reading the hosts' images did not answer one set per host");
    for (size_t i = 0; rc == 0 && i < m; i++)
        rc = host_images_apply(e, names[i], x->element[i], err);
    freeReplyObject(x);
out:
    free(names);
    free(keys);
    free(argv);
    free(argvs);
    free(argcs);
    return rc;
}

static int images_sync(berth_store_t *store, berth_error_t *err)
{
    berth_engine_t *e = berth__store_engine(store);
    if (e == NULL)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "store",
                                "the store has no engine to load images into");
    size_t n = berth_engine_host_count(e);
    for (size_t i = 0; i < n; i += SYNC_BATCH) {
        int rc = batch_sync(store, e, i, n - i < SYNC_BATCH ? n - i : SYNC_BATCH, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int berth_store_images_sync(berth_store_t *store, berth_error_t *err)
{
    /* A write to a closed connection must come back as BERTH_EIO, never
     * as a SIGPIPE that ends the process (store_conn.c explains the guard). */
    berth__sigpipe_guard_t guard;
    berth__sigpipe_block(&guard);
    int rc = images_sync(store, err);
    berth__sigpipe_unblock(&guard);
    return rc;
}
