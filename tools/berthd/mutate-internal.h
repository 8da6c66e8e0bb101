/*
 * mutate-internal.h: where mutate.c (a mutating request's life: start,
 * read, commit outcome, retries, answer) and mutate_decide.c (what each
 * kind of request changes) meet: the request's state and the calls each
 * makes of the other.  Internal to berthd's mutating requests; nothing
 * here is used outside those two files.
 */
#ifndef BD_MUTATE_INTERNAL_H
#define BD_MUTATE_INTERNAL_H

#include "api-internal.h"
#include "digest.h"
#include "worker.h"

/* How many times a request starts again from its read when the resource
 * changed under it, before it answers 409 Conflict. */
#define MUT_ATTEMPTS 5

/* How many private addresses a PUT into a subnet tries (one commit each,
 * the next address when another group holds one) before it answers 409. */
#define MUT_IP_PROBES 64

/* One mutating request, from its start to its answer. */
typedef struct mut {
    bd_api_t *api;
    bd_reply_t *reply;
    op_t op;
    char *body;                     /* the request's body, copied           */
    char *base_url;
    bool post;
    int attempts;
    unsigned ip_probe;              /* private addresses tried and taken    */
    double t0;
    /* what the read found */
    json_t *rec;
    char sha1[41];
    /* a PUT's document */
    berth_group_t *g;
    char *spec;
    char *placed_spec;              /* spec with the group's private address
                                     * (ipAddress.ip) as the commit stores
                                     * it, or NULL: spec itself            */
    berth_request_t req;
    char location[BD_LOCATION_MAX + 1];
    json_t *standby;                /* properties.standbyPoolProfile as given
                                     * (taken out of the document), or NULL */
    char standby_pool[BD_KEY_MAX + 1]; /* its pool "<sub>/<rg>/<name>", or "" */
    json_t *tags;                   /* a PATCH's tags (NULL: none given)    */
    json_t *profile;                /* a PUT's containerGroupProfile {id,
                                     * revision} as resolved (NULL: none)    */
    /* the commit */
    bd_fx_t fx;
    json_t *newrec;                 /* the record the commit writes         */
    int ok_status;
    bool with_body;                 /* answer the resource (PUT, PATCH)     */
    const char *force_state;        /* its provisioningState, or NULL       */
    bool async_op;                  /* answer Azure-AsyncOperation          */
    char async_url[768];
    bool placing;                   /* the commit places the group          */
    bool keep;                      /* the release keeps the document (stop) */
    /* the group's document as the library holds it (start, DELETE) */
    bool doc_read;                  /* read in this try (doc NULL: none)    */
    char *doc;
    void (*then)(struct mut *);     /* what goes on once it is read         */
} mut_t;

/* ---- mutate.c ------------------------------------------------------------------------------ */

/* Frees the request (its reply was sent or handed on). */
void mut_free(mut_t *m);

/* Answers a CloudError `code` with HTTP `status` and the formatted message
 * (target: the JSON path at fault, "" for none), then frees the request. */
void mut_error(mut_t *m, int status, const char *code, const char *target, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));

/* Answers *err as a CloudError with HTTP `status`, then frees the request. */
void mut_berth_error(mut_t *m, int status, const berth_error_t *err);

/* Answers 500: the resource store is failing; frees the request. */
void mut_store_failing(mut_t *m);

/* Sends the success answer (m->ok_status, Azure-AsyncOperation when due)
 * with `body` (taken; NULL for none) and frees the request. */
void mut_send_ok(mut_t *m, json_t *body);

/* The commit applied: answers, with the resource's body when one is due;
 * frees the request. */
void mut_answer(mut_t *m);

/* A commit's outcome other than success: starts again from the read
 * (at most MUT_ATTEMPTS times), or answers the error; frees the request
 * when it answered. */
void mut_commit_failed(mut_t *m, int status, const berth_error_t *err);

/* The store's callback for a commit (berth_store_done_cb; data is the
 * request): answers, or mut_commit_failed(). */
void mut_on_commit(int status, const berth_placement_t *placement, const berth_error_t *err,
                   void *data);

/* ---- mutate_decide.c ----------------------------------------------------------------------- */

/* Takes properties.standbyPoolProfile {id, failContainerGroupCreateOnReuseFailure}
 * out of a PUT's body (m->body, rewritten) into m->standby and
 * m->standby_pool, before the document is parsed.  0, or -1 with the
 * reply sent (a bad profile: 400 naming its path). */
int mut_standby_take(mut_t *m);

/* The read's callback (records.c; data is the request): decides from the
 * record (rec, NULL when there is none; sha1 its digest as read) what the
 * request changes, and commits it or answers. */
void mut_on_record(int status, json_t *rec, const char *sha1, void *data);

#endif /* BD_MUTATE_INTERNAL_H */
