/*
 * effects.c: a caller's own records riding with a commit (berth.h,
 * "Effects"): checked, copied, and laid out as the *_fx Functions of
 * functions.c expect them.
 *
 * A commit's FCALL is the plain Function's KEYS and ARGV with, appended,
 * one key per effect, then four arguments per effect (op, field, value,
 * n as decimal text), then the number of effects.  The copy made here owns
 * every byte the FCALL points at, so a queued commit outlives its caller's
 * strings.
 *
 * This file must never let an effect name one of the cell's own keys, and
 * never does I/O.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "store.h"

static const char *const OWN_NAMES[] = {"meta",   "hosts",       "skus", "groups",
                                        "log",    "seq",         "views", "agents",
                                        "ngroups", "ngroupnotes", "pools", "poolseq",
                                        "evictions", "documents"};
static const char *const OWN_PREFIXES[] = {"hostgroups:", "assign:", "alive:", "images:",
                                           "poolmembers:", "calls:", "reply:"};

static const char *op_word(berth_effect_op_t op)
{
    switch (op) {
    case BERTH_EFFECT_HSET: return "hset";
    case BERTH_EFFECT_HDEL: return "hdel";
    case BERTH_EFFECT_ZADD: return "zadd";
    case BERTH_EFFECT_ZREM: return "zrem";
    case BERTH_EFFECT_HINCRBY: return "hincrby";
    case BERTH_EFFECT_SET: return "set";
    case BERTH_EFFECT_DEL: return "del";
    case BERTH_EFFECT_EXPECT: return "expect";
    case BERTH_EFFECT_CLAIM: return "claim";
    case BERTH_EFFECT_UNCLAIM: return "unclaim";
    }
    return NULL;
}

/* Whether op acts on a hash field or set member (and so needs one). */
static bool needs_field(berth_effect_op_t op)
{
    return op != BERTH_EFFECT_SET && op != BERTH_EFFECT_DEL;
}

/* Whether value[0..len-1] is a SHA-1 as Redis's sha1hex() writes it: 40
 * lowercase hex digits (any other text could never match). */
static bool is_sha1_hex(const char *value, size_t len)
{
    if (len != 40)
        return false;
    for (size_t k = 0; k < len; k++)
        if (!((value[k] >= '0' && value[k] <= '9') || (value[k] >= 'a' && value[k] <= 'f')))
            return false;
    return true;
}

/* 0 when `name` may be an effect's key, else the refusal in err. */
static int key_check(const char *name, size_t i, berth_error_t *err)
{
    size_t len = name != NULL ? strlen(name) : 0;
    if (len == 0 || len > BERTH_NAME_MAX + 32)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects", "effect %zu: "
                                "a key name of 1 to %u bytes is needed", i, BERTH_NAME_MAX + 32);
    for (size_t k = 0; k < len; k++) {
        unsigned char ch = (unsigned char)name[k];
        if (ch <= ' ' || ch >= 0x7f || ch == '{' || ch == '}')
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                    "effect %zu: key name '%s' holds a space, a brace or a "
                                    "byte outside printable ASCII", i, name);
    }
    for (size_t k = 0; k < BERTH__ARRAY_LEN(OWN_NAMES); k++)
        if (strcmp(name, OWN_NAMES[k]) == 0)
            goto own;
    for (size_t k = 0; k < BERTH__ARRAY_LEN(OWN_PREFIXES); k++)
        if (strncmp(name, OWN_PREFIXES[k], strlen(OWN_PREFIXES[k])) == 0)
            goto own;
    return 0;
own:
    return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                            "effect %zu: key '%s' belongs to the cell's own state", i, name);
}

int berth__effects_copy(const berth_store_t *s, const berth_effect_t *effects, size_t n,
                        berth__effects_t **out, berth_error_t *err)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (effects == NULL || n > BERTH_EFFECTS_MAX)
        return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                "at most %u effects, given as an array", BERTH_EFFECTS_MAX);
    char prefix[BERTH__KEYNAME_MAX];
    berth__store_key(s, prefix, sizeof prefix, "", "");
    size_t plen = strlen(prefix);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const berth_effect_t *e = &effects[i];
        if (op_word(e->op) == NULL)
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                    "effect %zu: unknown operation %d", i, (int)e->op);
        /* The exceptions: a caller drops a group's eviction record or its
         * kept document. */
        bool owned = e->op == BERTH_EFFECT_HDEL && e->key != NULL &&
                     (strcmp(e->key, "evictions") == 0 || strcmp(e->key, "documents") == 0);
        int rc = owned ? 0 : key_check(e->key, i, err);
        if (rc < 0)
            return rc;
        size_t flen = e->field != NULL ? strlen(e->field) : 0;
        if (needs_field(e->op) && (flen == 0 || flen > 4096))
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                    "effect %zu: a field of 1 to 4096 bytes is needed", i);
        size_t vlen = e->value == NULL ? 0 : e->value_len ? e->value_len : strlen(e->value);
        if (vlen > BERTH_EFFECT_VALUE_MAX)
            return berth__error_set(err, BERTH_ETOOBIG, "InvalidArgument", "effects",
                                    "effect %zu: a value of %zu bytes is over %u", i, vlen,
                                    BERTH_EFFECT_VALUE_MAX);
        if (e->op == BERTH_EFFECT_EXPECT && vlen != 0 && !is_sha1_hex(e->value, vlen))
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                    "effect %zu: an expectation is a SHA-1 in 40 hex digits, "
                                    "or empty for an absent field", i);
        if ((e->op == BERTH_EFFECT_SET && (e->n < 0 || e->n > BERTH_EFFECT_TTL_MAX)) ||
            (e->op == BERTH_EFFECT_HINCRBY &&
             (e->n > BERTH_EFFECT_DELTA_MAX || e->n < -BERTH_EFFECT_DELTA_MAX)))
            return berth__error_set(err, BERTH_EINVAL, "InvalidArgument", "effects",
                                    "effect %zu: n %" PRId64 " is out of range", i, e->n);
        bytes += plen + strlen(e->key) + 1 + flen + 1 + vlen + 1 + 24;
    }
    berth__effects_t *fx = calloc(1, sizeof *fx + bytes);
    if (fx == NULL)
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "no memory for effects");
    fx->n = n;
    char *p = fx->bytes;
    for (size_t i = 0; i < n; i++) {
        const berth_effect_t *e = &effects[i];
        berth__effect_copy_t *c = &fx->e[i];
        c->op = op_word(e->op);
        c->key = p;
        p += sprintf(p, "%s%s", prefix, e->key) + 1;
        c->field = p;
        p += sprintf(p, "%s", e->field != NULL ? e->field : "") + 1;
        size_t vlen = e->value == NULL ? 0 : e->value_len ? e->value_len : strlen(e->value);
        c->value = p;
        c->value_len = vlen;
        if (vlen > 0)
            memcpy(p, e->value, vlen);
        p[vlen] = '\0';
        p += vlen + 1;
        c->n = p;
        p += sprintf(p, "%" PRId64, e->n) + 1;
    }
    *out = fx;
    return 0;
}

void berth__effects_free(berth__effects_t *fx)
{
    free(fx);
}

int berth__effects_fcall(const char *function, int nkeys, const char *const *keys,
                         int nargs, const char *const *args, const size_t *arg_lens,
                         const berth__effects_t *fx, berth__fcall_t *out, berth_error_t *err)
{
    size_t ne = fx != NULL ? fx->n : 0;
    size_t argc = 3 + (size_t)nkeys + ne + (size_t)nargs + 4 * ne + 1;
    out->argv = malloc(argc * sizeof *out->argv);
    out->lens = malloc(argc * sizeof *out->lens);
    if (out->argv == NULL || out->lens == NULL) {
        berth__fcall_free(out);
        return berth__error_set(err, BERTH_ENOMEM, "OutOfMemory", "",
                                "no memory for a commit");
    }
    snprintf(out->numkeys, sizeof out->numkeys, "%zu", (size_t)nkeys + ne);
    snprintf(out->count, sizeof out->count, "%zu", ne);
    size_t a = 0;
#define PUT(s, l) (out->argv[a] = (s), out->lens[a] = (l), a++)
    PUT("FCALL", 5);
    PUT(function, strlen(function));
    PUT(out->numkeys, strlen(out->numkeys));
    for (int i = 0; i < nkeys; i++)
        PUT(keys[i], strlen(keys[i]));
    for (size_t i = 0; i < ne; i++)
        PUT(fx->e[i].key, strlen(fx->e[i].key));
    for (int i = 0; i < nargs; i++)
        PUT(args[i], arg_lens != NULL ? arg_lens[i] : strlen(args[i]));
    for (size_t i = 0; i < ne; i++) {
        const berth__effect_copy_t *c = &fx->e[i];
        PUT(c->op, strlen(c->op));
        PUT(c->field, strlen(c->field));
        PUT(c->value, c->value_len);
        PUT(c->n, strlen(c->n));
    }
    PUT(out->count, strlen(out->count));
#undef PUT
    out->argc = (int)a;
    return 0;
}

void berth__fcall_free(berth__fcall_t *c)
{
    free(c->argv);
    free(c->lens);
    c->argv = NULL;
    c->lens = NULL;
    c->argc = 0;
}

int berth__effects_refusal(const struct redisReply *r, const char *reason, const char *message,
                           berth_error_t *err)
{
    bool changed = strcmp(reason, "changed") == 0;
    if (!changed && strcmp(reason, "taken") != 0)
        return 0;
    long long index = 0;
    if (r->elements > 3 && r->element[3]->type == REDIS_REPLY_INTEGER)
        index = r->element[3]->integer - 1;
    char target[32];
    snprintf(target, sizeof target, "effects[%lld]", index);
    return berth__error_set(err, changed ? BERTH_ESTALE : BERTH_EEXIST,
                            changed ? "RecordChanged" : "RecordTaken", target, "%s", message);
}
