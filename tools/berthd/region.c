/*
 * region.c: one berthd serving several cells of a region (--cell a,b,c on
 * one Redis, a single server or a Cluster): a full API per cell (its own
 * asynchronous store and engine replica, records, worker), and in front of
 * them the routing that makes every resource of the region reachable from
 * any berthd serving it.
 *
 * THE DIRECTORY.  Which cell holds a container group is kept in Redis, in
 * 16 hashes "berth:dir:{00}" .. "berth:dir:{15}" (each its own hash tag,
 * so the shards spread over a Cluster's masters; the shard is a hash of
 * the resource key), field "<sub>/<rg>/<name>" (the store key), value the
 * cell's name.  A create writes the entry BEFORE the cell's commit (set
 * only when absent, in one script: two berthds creating one name agree on
 * its cell); a create the cell refuses (4xx) removes it again, only while
 * it still names that cell; a DELETE that succeeds likewise.  An entry
 * whose cell holds no record (a create that failed with a 5xx: it may
 * have been applied) is harmless: reads of it answer the cell's 404, and a
 * PUT creates it in that cell, or, when that cell has no room, in the
 * next cell with room, the entry re-pointed.
 *
 * A berthd opening a region enters every group its cells hold in the
 * directory when it has no entry (a cell that served alone before holds
 * groups made without one), page by page on the loop.
 *
 * ROUTES.  A container group's routes look its cell up in the directory
 * and run there (no entry: the cell the key hashes to, which answers 404).
 * A PUT of a group without an entry is a create: the cells are tried in a
 * stable order -- those whose replica's free capacity (the engine's
 * totals, kept by every commit the replica follows) covers the group's
 * requests first, each list starting at the cell the key hashes to, then
 * the others -- and a cell that answers 409 ResourceNotAvailable (no host
 * fits) sends the group to the next one.  A group whose document names a
 * container group profile or a standby pool goes to the home cell alone,
 * where those live.  The lists of container groups (a subscription's, a
 * resource group's, /berth/containerGroups) ask every cell for the same
 * page and merge the answers in key order: the first $top of them, with a
 * nextLink after the last one kept, is exactly the region's page.  Usages
 * add the cells' counts; /berth/hosts lists every cell's hosts.
 * Operations, exec sessions and one host's routes ask the cells in turn
 * until one does not answer 404 (an interactive session's take notes its
 * group's cell for the WebSocket, bd_region_async_of()).  Everything else
 * (NGroups, standby pools, container group profiles, capabilities, cached
 * images, subnets' links) is the home cell's: the first one named, or the
 * first by name with --cell '*'.
 *
 * A request is copied (bd_request_copy()) and lives until its answer is
 * sent: every cell answers into a captured reply that this file forwards,
 * or merges, once all it asked have answered.
 *
 * Every step is a callback on the loop: the directory over non-blocking
 * connections (records.c, following MOVED), the cells through captured
 * replies (bd_reply_capture_new()).  This file must never block, never
 * write a cell's keys (only the cells' own APIs do), and never answer a
 * request twice.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api-internal.h"
#include "query.h"
#include "reads.h"
#include "region.h"

#define DIR_SHARDS 16
#define DIR_TIMEOUT_MS 5000u
#define WHERE_CACHE_MAX 65536           /* keys remembered for bd_region_async_of() */
#define PATH_BYTES 2048
#define SEGS 16

/* Sets the entry to ARGV[2] when there is none; answers "1<cell>" when it
 * did, "0<cell>" naming the cell an entry already held. */
static const char CLAIM_LUA[] =
    "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
    "if v then return '0' .. v end "
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return '1' .. ARGV[2]";
/* Removes the entry while it names cell ARGV[2]. */
static const char FORGET_LUA[] =
    "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then "
    "redis.call('HDEL', KEYS[1], ARGV[1]) end return 'OK'";

/* The walk over one cell's resources that enters them in the directory. */
typedef struct indexer {
    struct bd_region *g;
    size_t cell;
    char after[BD_KEY_MAX + 1];         /* the last key entered             */
    uint64_t count;
} indexer_t;

struct bd_region {
    const bd_config_t *cfg;
    struct event_base *base;
    size_t n;
    bd_config_t *ccfg;                  /* each cell's configuration        */
    bd_api_t **cells;                   /* each cell's API                  */
    bd_records_t *dir[DIR_SHARDS];
    json_t *where;                      /* key -> cell index, as last routed */
    struct rq *pending;                 /* requests in flight               */
    bool closing;
    uint64_t creates[BD_CELLS_MAX];     /* groups created, per cell         */
    uint64_t overflows;                 /* creates a full cell passed on    */
    indexer_t index[BD_CELLS_MAX];
};

typedef enum rq_kind {
    RQ_ONE = 1,                         /* one resource: its cell           */
    RQ_CREATE,                          /* a PUT: its cell, or a new one    */
    RQ_FIRST,                           /* the cells in turn, past 404s     */
    RQ_LIST,                            /* every cell's page, merged        */
    RQ_HOSTS,                           /* every cell's hosts               */
    RQ_USAGES                           /* every cell's usages, added       */
} rq_kind_t;

/* One request the region routes, from its start to its answer. */
typedef struct rq {
    struct rq *prev, *next;
    bd_region_t *g;
    rq_kind_t kind;
    bd_request_copy_t rc;
    bd_reply_t *real;
    struct event *ev;                   /* runs step() once a cell answered */
    char key[BD_KEY_MAX + 1];
    size_t shard;
    size_t order[BD_CELLS_MAX];         /* the cells in the order to try    */
    size_t at;                          /* RQ_CREATE, RQ_FIRST: order[at]   */
    bool tried[BD_CELLS_MAX];           /* RQ_CREATE: cells that refused it */
    bool fresh;                         /* RQ_CREATE: this request's entry  */
    bool forget_ok;                     /* a DELETE: its success drops the entry */
    size_t cell;                        /* the cell asked (RQ_ONE, CREATE)  */
    bd_reply_t *caps[BD_CELLS_MAX];     /* the cells' captured answers      */
    size_t waiting;                     /* answers still due                */
} rq_t;

/* ---- small helpers ------------------------------------------------------------------------ */

static uint32_t key_hash(const char *key)
{
    uint32_t h = 2166136261u;           /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static bool ieq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* The index of the cell named name[len], or -1 when this berthd does not
 * serve it. */
static int cell_index(const bd_region_t *g, const char *name, size_t len)
{
    for (size_t i = 0; i < g->n; i++)
        if (strlen(g->ccfg[i].cell) == len && memcmp(g->ccfg[i].cell, name, len) == 0)
            return (int)i;
    return -1;
}

/* Remembers that `key` is in cell i, for bd_region_async_of(). */
static void where_note(bd_region_t *g, const char *key, size_t i)
{
    if (json_object_size(g->where) >= WHERE_CACHE_MAX)
        json_object_clear(g->where);
    json_object_set_new(g->where, key, json_integer((json_int_t)i));
}

/* The cells in the order a new group tries them: from the cell `key`
 * hashes to, first those whose replica has the free capacity the group's
 * body requests (millicores, MiB, summed over its containers; a body that
 * names none counts as asking nothing), then the others.  Returns whether
 * the body names a container group profile or a standby pool, which only
 * the home cell holds: such a group may go there alone. */
static bool create_order(const bd_region_t *g, const char *key, const char *body,
                         size_t *order)
{
    uint64_t mc = 0, mib = 0;
    json_t *doc = json_loads(body != NULL ? body : "", 0, NULL);
    json_t *props = json_object_get(doc, "properties");
    bool home = json_object_get(props, "containerGroupProfile") != NULL ||
                json_object_get(props, "standbyPoolProfile") != NULL;
    json_t *cs = json_object_get(props, "containers");
    size_t i;
    json_t *c;
    json_array_foreach(cs, i, c)
    {
        json_t *rq = json_object_get(
            json_object_get(json_object_get(json_object_get(c, "properties"), "resources"),
                            "requests"),
            "cpu");
        json_t *rm = json_object_get(
            json_object_get(json_object_get(json_object_get(c, "properties"), "resources"),
                            "requests"),
            "memoryInGB");
        if (json_is_number(rq) && json_number_value(rq) > 0)
            mc += (uint64_t)(json_number_value(rq) * 1000.0 + 0.5);
        if (json_is_number(rm) && json_number_value(rm) > 0)
            mib += (uint64_t)(json_number_value(rm) * 1024.0 + 0.5);
    }
    json_decref(doc);
    size_t start = (key_hash(key) / DIR_SHARDS) % g->n, k = 0;
    bool room[BD_CELLS_MAX];
    for (i = 0; i < g->n; i++) {
        berth_engine_stats_t st;
        berth_engine_stats(berth_store_async_engine(bd_api_async(g->cells[i], NULL)), &st);
        room[i] = st.capacity_millicores - st.used_millicores >= mc &&
                  st.capacity_memory_mib - st.used_memory_mib >= mib && st.hosts > 0;
    }
    for (int pass = 0; pass < 2; pass++)
        for (i = 0; i < g->n; i++) {
            size_t cell = (start + i) % g->n;
            if (room[cell] == (pass == 0))
                order[k++] = cell;
        }
    return home;
}

/* ---- a request's life ---------------------------------------------------------------------- */

static void rq_free(rq_t *q)
{
    bd_region_t *g = q->g;
    if (q->prev != NULL)
        q->prev->next = q->next;
    else if (g->pending == q)
        g->pending = q->next;
    if (q->next != NULL)
        q->next->prev = q->prev;
    for (size_t i = 0; i < BD_CELLS_MAX; i++)
        bd_reply_capture_free(q->caps[i]);
    if (q->ev != NULL)
        event_free(q->ev);
    bd_request_copy_free(&q->rc);
    free(q);
}

static void rq_step(evutil_socket_t fd, short what, void *arg);

/* A request with a copy of req, or NULL (`reply` answered 503). */
static rq_t *rq_new(bd_region_t *g, rq_kind_t kind, const bd_request_t *req, bd_reply_t *reply)
{
    rq_t *q = calloc(1, sizeof *q);
    if (q != NULL) {
        q->g = g;
        q->kind = kind;
        q->real = reply;
        q->next = g->pending;
        if (g->pending != NULL)
            g->pending->prev = q;
        g->pending = q;
    }
    if (q == NULL || !bd_request_copy(&q->rc, req) ||
        (q->ev = event_new(g->base, -1, 0, rq_step, q)) == NULL) {
        if (q != NULL)
            rq_free(q);
        bd_reply_error(reply, 503, "ServerBusy", "", "berthd is short of memory; try again");
        return NULL;
    }
    return q;
}

/* Sends what cell answer caps[i] holds to the client; frees the request. */
static void rq_forward(rq_t *q, size_t i)
{
    bd_reply_forward(q->caps[i], q->real);
    q->caps[i] = NULL;
    rq_free(q);
}

static void rq_fail(rq_t *q, int status, const char *code, const char *msg)
{
    bd_reply_error(q->real, status, code, "", "%s", msg);
    rq_free(q);
}

/* A cell answered into q->caps[i]: the rest runs from q->ev, outside the
 * send that recorded the answer. */
static void rq_answered(void *arg)
{
    rq_t *q = arg;
    if (q->waiting > 0)
        q->waiting--;
    if (q->waiting == 0)
        event_active(q->ev, 0, 0);
}

/* Hands the request to cell i, its answer captured in q->caps[i]. */
static void rq_ask(rq_t *q, size_t i)
{
    bd_reply_capture_free(q->caps[i]);
    q->caps[i] = bd_reply_capture_new();
    if (q->caps[i] == NULL) {
        if (q->waiting > 0 && --q->waiting == 0)
            event_active(q->ev, 0, 0);
        return;
    }
    bd_reply_capture_notify(q->caps[i], rq_answered, q);
    bd_api_handle(q->g->cells[i], &q->rc.req, q->caps[i]);
}

/* The status a cell answered (0: none: out of memory) and, for a
 * CloudError, its code into code[cap] ("" when none). */
static int answer_of(const rq_t *q, size_t i, char *code, size_t cap)
{
    const char *body;
    size_t len;
    int status = bd_reply_captured(q->caps[i], &body, &len);
    code[0] = '\0';
    if (status >= 400 && body != NULL) {
        json_t *o = json_loadb(body, len, 0, NULL);
        snprintf(code, cap, "%s",
                 json_string_value(json_object_get(json_object_get(o, "error"), "code")) ?: "");
        json_decref(o);
    }
    return status;
}

static void dir_done(int status, const char *text, size_t len, void *data)
{
    (void)status, (void)text, (void)len, (void)data;
}

/* Removes key's directory entry while it names cell i (not waited for:
 * commands on one shard run in order). */
static void dir_forget(bd_region_t *g, size_t shard, const char *key, size_t i)
{
    const char *args[] = {key, g->ccfg[i].cell};
    bd_records_script(g->dir[shard], FORGET_LUA, "", args, 2, dir_done, NULL);
}

/* ---- one resource ---------------------------------------------------------------------------- */

/* A directory call failed (or the region is closing): answers, frees q. */
static void rq_dir_failed(rq_t *q, const char *what)
{
    if (q->g->closing)
        rq_fail(q, 503, "ServiceUnavailable", "berthd is stopping");
    else
        rq_fail(q, 500, "InternalServerError", what);
}

/* q's resource is in the cell named name[len]: asks that cell, whose
 * answer one_answered() looks at (the request's copy lives until then).
 * A cell this berthd does not serve is a 503. */
static void rq_to_cell(rq_t *q, const char *name, size_t len)
{
    int i = cell_index(q->g, name, len);
    if (i < 0) {
        bd_reply_error(q->real, 503, "CellNotServed", "",
                       "the resource is in cell '%.*s', which this berthd does not serve",
                       (int)len, name);
        rq_free(q);
        return;
    }
    q->cell = (size_t)i;
    where_note(q->g, q->key, q->cell);
    q->waiting = 1;
    rq_ask(q, q->cell);
}

/* The directory named the cell of q's resource (text NULL: none: the cell
 * the key hashes to, which answers 404). */
static void one_found(int status, const char *text, size_t len, void *data)
{
    rq_t *q = data;
    if (q->g->closing || status != 0) {
        rq_dir_failed(q, "the region's directory cannot be read");
        return;
    }
    if (text == NULL) {
        const char *home = q->g->ccfg[q->order[0]].cell;
        rq_to_cell(q, home, strlen(home));
        return;
    }
    rq_to_cell(q, text, len);
}

/* A create's directory entry: set for order[at] ("1<cell>"), or another
 * cell's already ("0<cell>": the group exists or is being created there,
 * and the request is that cell's). */
static void create_claimed(int status, const char *text, size_t len, void *data)
{
    rq_t *q = data;
    if (q->g->closing || status != 0 || text == NULL || len < 2) {
        rq_dir_failed(q, "the region's directory cannot be written");
        return;
    }
    q->fresh = text[0] == '1';
    rq_to_cell(q, text + 1, len - 1);
}

/* Moves q->at to the first cell of q->order not tried yet; false when
 * every cell was. */
static bool next_untried(rq_t *q)
{
    for (q->at = 0; q->at < q->g->n; q->at++)
        if (!q->tried[q->order[q->at]])
            return true;
    return false;
}

/* Claims the directory entry for the first cell not tried yet (there is
 * one). */
static void create_claim(rq_t *q)
{
    next_untried(q);
    const char *args[] = {q->key, q->g->ccfg[q->order[q->at]].cell};
    if (bd_records_script(q->g->dir[q->shard], CLAIM_LUA, "", args, 2, create_claimed, q) != 0)
        rq_fail(q, 503, "ServerBusy", "berthd is short of memory; try again");
}

/* No room in cell q->cell: the group goes to the next cell, its entry
 * claimed anew. */
static void create_overflow(rq_t *q)
{
    q->g->overflows++;
    create_claim(q);
}

/* A PUT found an entry naming a cell without room: when that cell holds
 * no record of the group, the entry was left dangling (a create that
 * failed with a 5xx) and the group is placed elsewhere, the entry
 * re-pointed; else the cell's answer stands. */
static void dangling_read(int status, json_t *rec, const char *sha1, void *data)
{
    (void)sha1;
    rq_t *q = data;
    if (status == 0 && rec == NULL && !q->g->closing) {
        dir_forget(q->g, q->shard, q->key, q->cell);
        q->fresh = true;
        create_overflow(q);
        return;
    }
    rq_forward(q, q->cell);
}

/* The cell answered: a DELETE's success drops the entry; a create with
 * a fresh entry keeps it, drops it or passes the group on. */
static void one_answered(rq_t *q)
{
    char code[64];
    int status = answer_of(q, q->cell, code, sizeof code);
    bd_region_t *g = q->g;
    bool nospace = status == 409 && strcmp(code, "ResourceNotAvailable") == 0;
    q->tried[q->cell] = true;
    if (q->kind == RQ_CREATE && !q->fresh && nospace && next_untried(q) &&
        bd_records_get(g->cells[q->cell]->records, q->key, dangling_read, q) == 0)
        return;
    if (q->kind == RQ_ONE || !q->fresh) {
        if (q->forget_ok && status >= 200 && status < 300)
            dir_forget(g, q->shard, q->key, q->cell);
        rq_forward(q, q->cell);
        return;
    }
    if (status >= 200 && status < 300) {
        g->creates[q->cell]++;
        rq_forward(q, q->cell);
        return;
    }
    /* Refused: nothing was written; the entry goes.  A 5xx may have been
     * applied (a commit not confirmed): its entry stays. */
    if (status >= 400 && status < 500)
        dir_forget(g, q->shard, q->key, q->cell);
    if (nospace && next_untried(q)) {
        create_overflow(q);
        return;
    }
    rq_forward(q, q->cell);
}

/* ---- every cell ------------------------------------------------------------------------------ */

/* The store key of a container group's ARM id (lowercase sub and rg), or
 * "" when `id` is none. */
static void key_of_id(const char *id, char *out, size_t cap)
{
    char buf[PATH_BYTES];
    char *seg[SEGS];
    int n = id != NULL ? bd_path_split(id, buf, sizeof buf, seg, SEGS) : -1;
    if (n == 8)
        bd_resource_key(seg[1], seg[3], seg[7], out, cap);
    else
        snprintf(out, cap, "%s", "");
}

typedef struct item {
    char key[BD_KEY_MAX + 1];
    json_t *v;
} item_t;

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const item_t *)a)->key, ((const item_t *)b)->key);
}

/* The request's URL with $top and $skiptoken replaced, into a new string. */
static char *next_link(const rq_t *q, int top, const char *after)
{
    char enc[BD_KEY_MAX * 3 + 1];
    if (bd_urlencode(after, enc, sizeof enc) != 0)
        return NULL;
    char *query = strdup(q->rc.req.query != NULL ? q->rc.req.query : "");
    char *out = NULL;
    size_t len = 0;
    FILE *f = query != NULL ? open_memstream(&out, &len) : NULL;
    if (f == NULL) {
        free(query);
        return NULL;
    }
    fprintf(f, "%s%s?", q->rc.req.base_url != NULL ? q->rc.req.base_url : "", q->rc.req.path);
    char *save = NULL;
    for (char *p = strtok_r(query, "&", &save); p != NULL; p = strtok_r(NULL, "&", &save))
        if (strncmp(p, "$top=", 5) != 0 && strncmp(p, "$skiptoken=", 11) != 0)
            fprintf(f, "%s&", p);
    fprintf(f, "$top=%d&$skiptoken=%s", top, enc);
    fclose(f);
    free(query);
    return out;
}

/* Every cell answered a page of container groups: the region's page is
 * the first $top of their items in key order. */
static json_t *merge_lists(rq_t *q, json_t **pages)
{
    char top_s[16];
    int top = BD_PAGE_MAX;
    if (bd_query_get(q->rc.req.query, "$top", top_s, sizeof top_s) == 1)
        top = atoi(top_s);
    size_t total = 0;
    bool more = false;
    for (size_t i = 0; i < q->g->n; i++) {
        total += json_array_size(json_object_get(pages[i], "value"));
        more = more || json_object_get(pages[i], "nextLink") != NULL;
    }
    item_t *items = calloc(total + 1, sizeof *items);
    json_t *value = json_array();
    json_t *body = json_pack("{s:o}", "value", value);
    if (items == NULL || value == NULL || body == NULL) {
        free(items);
        json_decref(body);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < q->g->n; i++) {
        size_t j;
        json_t *v;
        json_array_foreach(json_object_get(pages[i], "value"), j, v)
        {
            key_of_id(json_string_value(json_object_get(v, "id")), items[k].key,
                      sizeof items[k].key);
            items[k++].v = v;
        }
    }
    qsort(items, k, sizeof *items, item_cmp);
    size_t keep = k < (size_t)top ? k : (size_t)top;
    for (size_t i = 0; i < keep; i++)
        json_array_append(value, items[i].v);
    if ((more || k > keep) && keep > 0) {
        char *link = next_link(q, top, items[keep - 1].key);
        if (link != NULL)
            json_object_set_new(body, "nextLink", json_string(link));
        free(link);
    }
    free(items);
    return body;
}

/* Every cell answered its usages: the counts added per name. */
static json_t *merge_usages(rq_t *q, json_t **pages)
{
    json_t *body = json_deep_copy(pages[0]);
    json_t *sum = json_object_get(body, "value");
    for (size_t i = 1; i < q->g->n; i++) {
        size_t j, m;
        json_t *v, *s;
        json_array_foreach(json_object_get(pages[i], "value"), j, v)
        {
            const char *name =
                json_string_value(json_object_get(json_object_get(v, "name"), "value"));
            json_array_foreach(sum, m, s)
            {
                const char *sname =
                    json_string_value(json_object_get(json_object_get(s, "name"), "value"));
                if (name != NULL && sname != NULL && strcmp(name, sname) == 0)
                    json_object_set_new(
                        s, "currentValue",
                        json_integer(json_integer_value(json_object_get(s, "currentValue")) +
                                     json_integer_value(json_object_get(v, "currentValue"))));
            }
        }
    }
    return body;
}

/* Every cell answered: the first that did not answer 200 speaks for all;
 * else the merged body. */
static void all_answered(rq_t *q)
{
    bd_region_t *g = q->g;
    json_t *pages[BD_CELLS_MAX] = {NULL};
    char code[64];
    for (size_t i = 0; i < g->n; i++)
        if (answer_of(q, i, code, sizeof code) != 200) {
            rq_forward(q, i);
            return;
        }
    bool ok = true;
    for (size_t i = 0; i < g->n; i++) {
        const char *text;
        size_t len;
        bd_reply_captured(q->caps[i], &text, &len);
        pages[i] = text != NULL ? json_loadb(text, len, 0, NULL) : NULL;
        ok = ok && json_is_array(json_object_get(pages[i], "value"));
    }
    json_t *body = NULL;
    if (ok && q->kind == RQ_LIST) {
        body = merge_lists(q, pages);
    } else if (ok && q->kind == RQ_USAGES) {
        body = merge_usages(q, pages);
    } else if (ok) {
        body = json_deep_copy(pages[0]);
        for (size_t i = 1; body != NULL && i < g->n; i++)
            json_array_extend(json_object_get(body, "value"), json_object_get(pages[i], "value"));
    }
    for (size_t i = 0; i < g->n; i++)
        json_decref(pages[i]);
    if (body == NULL) {
        rq_fail(q, 500, "InternalServerError", "the cells' answers could not be merged");
        return;
    }
    bd_reply_send(q->real, 200, body, NULL);
    rq_free(q);
}

/* The cell order[at] answered: a 404 passes the request to the next.  An
 * interactive exec session's take names the group it runs in: its cell
 * is noted, for the session's store (bd_region_async_of()), whichever
 * berthd made the session. */
static void first_answered(rq_t *q)
{
    char code[64];
    size_t i = q->order[q->at];
    int status = answer_of(q, i, code, sizeof code);
    if (status == 404 && q->at + 1 < q->g->n) {
        q->at++;
        q->waiting = 1;
        rq_ask(q, q->order[q->at]);
        return;
    }
    const char *body;
    size_t len;
    if (status == 200 && q->rc.req.exec_interactive &&
        bd_reply_captured(q->caps[i], &body, &len) == 200 && body != NULL) {
        json_t *o = json_loadb(body, len, 0, NULL);
        const char *key =
            json_string_value(json_object_get(json_object_get(o, "session"), "key"));
        if (key != NULL)
            where_note(q->g, key, i);
        json_decref(o);
    }
    rq_forward(q, i);
}

static void rq_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    rq_t *q = arg;
    switch (q->kind) {
    case RQ_ONE:
    case RQ_CREATE: one_answered(q); break;
    case RQ_FIRST: first_answered(q); break;
    case RQ_LIST:
    case RQ_HOSTS:
    case RQ_USAGES: all_answered(q); break;
    }
}

/* ---- routes ---------------------------------------------------------------------------------- */

/* Whether seg[0..n-1] names container groups: a resource group's (n 7),
 * one group and below it (n >= 8). */
static bool group_path(char **seg, int n)
{
    return n >= 7 && ieq(seg[0], "subscriptions") && ieq(seg[2], "resourceGroups") &&
           ieq(seg[4], "providers") && ieq(seg[5], "Microsoft.ContainerInstance") &&
           ieq(seg[6], "containerGroups");
}

static rq_kind_t route_kind(const bd_request_t *req, char **seg, int n)
{
    bool get = req->method == BD_GET;
    if (group_path(seg, n) && n >= 8 && bd_valid_subscription(seg[1]) &&
        bd_valid_resource_group(seg[3]) && bd_valid_group_name(seg[7]))
        return n == 8 && req->method == BD_PUT ? RQ_CREATE : RQ_ONE;
    if (get && group_path(seg, n) && n == 7)
        return RQ_LIST;
    if (get && n == 5 && ieq(seg[0], "subscriptions") && ieq(seg[2], "providers") &&
        ieq(seg[3], "Microsoft.ContainerInstance") && ieq(seg[4], "containerGroups"))
        return RQ_LIST;
    if (n == 8 && ieq(seg[0], "subscriptions") && ieq(seg[2], "providers") &&
        ieq(seg[3], "Microsoft.ContainerInstance") && ieq(seg[4], "locations") &&
        ieq(seg[6], "operations"))
        return RQ_FIRST;
    if (get && n == 7 && ieq(seg[0], "subscriptions") && ieq(seg[2], "providers") &&
        ieq(seg[3], "Microsoft.ContainerInstance") && ieq(seg[4], "locations") &&
        ieq(seg[6], "usages"))
        return RQ_USAGES;
    if (ieq(seg[0], "berth") && n == 2 && get && strcmp(seg[1], "containerGroups") == 0)
        return RQ_LIST;
    if (ieq(seg[0], "berth") && n == 2 && get && strcmp(seg[1], "hosts") == 0)
        return RQ_HOSTS;
    if (ieq(seg[0], "berth") && (n == 3 || n == 4) &&
        (strcmp(seg[1], "hosts") == 0 || (n == 3 && strcmp(seg[1], "exec") == 0)))
        return RQ_FIRST;
    return 0;
}

/* Contract: region.h. */
void bd_region_handle(bd_region_t *g, const bd_request_t *req, bd_reply_t *reply)
{
    char buf[PATH_BYTES];
    char *seg[SEGS];
    int n = bd_path_split(req->path ? req->path : "", buf, sizeof buf, seg, SEGS);
    rq_kind_t kind = n > 0 && !g->closing ? route_kind(req, seg, n) : 0;
    if (kind == 0) {
        bd_api_handle(g->cells[0], req, reply);   /* the home cell's, or its error */
        return;
    }
    rq_t *q = rq_new(g, kind, req, reply);
    if (q == NULL)
        return;
    if (kind == RQ_ONE || kind == RQ_CREATE) {
        bd_resource_key(seg[1], seg[3], seg[7], q->key, sizeof q->key);
        q->shard = key_hash(q->key) % DIR_SHARDS;
        if (create_order(g, q->key, kind == RQ_CREATE ? req->body : NULL, q->order))
            for (size_t i = 1; i < g->n; i++)
                q->tried[i] = true;     /* the home cell's alone */
        q->forget_ok = req->method == BD_DELETE && n == 8;
        if (kind == RQ_CREATE)
            create_claim(q);
        else if (bd_records_read(g->dir[q->shard], "", q->key, one_found, q) != 0)
            rq_fail(q, 503, "ServerBusy", "berthd is short of memory; try again");
        return;
    }
    for (size_t i = 0; i < g->n; i++)
        q->order[i] = i;
    if (kind == RQ_FIRST) {
        q->waiting = 1;
        rq_ask(q, 0);
        return;
    }
    /* Every cell at once; an answer given inside the call counts down
     * before the next is asked, so `waiting` covers them all first. */
    q->waiting = g->n;
    for (size_t i = 0; i < g->n; i++)
        rq_ask(q, i);
}

/* ---- the cells' resources entered in the directory ---------------------------------------- */

static void index_next(indexer_t *x);

/* One page of the cell's resources: each one without a directory entry
 * gets one naming this cell (CLAIM_LUA sets only an absent entry), then
 * the next page. */
static void index_page(int status, const char *const *keys, json_t *const *recs, size_t n,
                       bool more, void *data)
{
    indexer_t *x = data;
    bd_region_t *g = x->g;
    if (g->closing)
        return;
    if (status != 0) {
        bd_log("warn", "region: cell %s not entered in the directory: its records cannot be read",
               g->ccfg[x->cell].cell);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i] == NULL)
            continue;   /* deleted meanwhile */
        const char *args[] = {keys[i], g->ccfg[x->cell].cell};
        bd_records_script(g->dir[key_hash(keys[i]) % DIR_SHARDS], CLAIM_LUA, "", args, 2,
                          dir_done, NULL);
        x->count++;
    }
    if (more && n > 0) {
        snprintf(x->after, sizeof x->after, "%s", keys[n - 1]);
        index_next(x);
        return;
    }
    bd_log("info", "region: cell %s: %llu container groups in the directory",
           g->ccfg[x->cell].cell, (unsigned long long)x->count);
}

static void index_next(indexer_t *x)
{
    if (bd_records_list(x->g->cells[x->cell]->records, "", x->after[0] != '\0' ? x->after : NULL,
                        BD_PAGE_MAX, index_page, x) != 0)
        bd_log("warn", "region: cell %s not entered in the directory: out of memory",
               x->g->ccfg[x->cell].cell);
}

/* ---- open, close, the rest ---------------------------------------------------------------- */

/* Contract: region.h. */
bd_region_t *bd_region_open(const bd_config_t *cfg, struct event_base *base, berth_error_t *err)
{
    bd_region_t *g = calloc(1, sizeof *g);
    if (g == NULL) {
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        return NULL;
    }
    g->cfg = cfg;
    g->base = base;
    char found[BD_CELLS_MAX][BERTH_NAME_MAX + 1];
    const char(*names)[BERTH_NAME_MAX + 1] = cfg->cells;
    g->n = cfg->ncells;
    if (cfg->all_cells) {
        if (bd_region_cells_find(cfg->redis_url, DIR_TIMEOUT_MS, found, BD_CELLS_MAX, &g->n,
                                 err) != 0) {
            free(g);
            return NULL;
        }
        names = (const char(*)[BERTH_NAME_MAX + 1])found;
    }
    g->ccfg = calloc(g->n, sizeof *g->ccfg);
    g->cells = calloc(g->n, sizeof *g->cells);
    g->where = json_object();
    if (g->ccfg == NULL || g->cells == NULL || g->where == NULL) {
        berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
        bd_region_close(g);
        return NULL;
    }
    for (size_t i = 0; i < DIR_SHARDS; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "berth:dir:{%02zu}", i);
        g->dir[i] = bd_records_new_keyed(base, cfg->redis_url, prefix, DIR_TIMEOUT_MS);
        if (g->dir[i] == NULL) {
            berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
            bd_region_close(g);
            return NULL;
        }
    }
    for (size_t i = 0; i < g->n; i++) {
        g->ccfg[i] = *cfg;
        snprintf(g->ccfg[i].cell, sizeof g->ccfg[i].cell, "%.*s", BERTH_NAME_MAX, names[i]);
        g->ccfg[i].ncells = 1;
        g->ccfg[i].all_cells = false;
        if (bd_api_open(&g->ccfg[i], base, &g->cells[i], err) != 0) {
            bd_region_close(g);
            return NULL;
        }
    }
    /* Groups a cell holds without a directory entry (made before the cell
     * joined a region) are entered, without blocking, page by page. */
    for (size_t i = 0; i < g->n; i++) {
        g->index[i] = (indexer_t){.g = g, .cell = i};
        index_next(&g->index[i]);
    }
    return g;
}

/* Contract: region.h. */
void bd_region_close(bd_region_t *g)
{
    if (g == NULL)
        return;
    g->closing = true;
    /* Directory reads still out fail now (their requests answer 503). */
    for (size_t i = 0; i < DIR_SHARDS; i++)
        bd_records_free(g->dir[i]);
    /* The cells answer what they still hold (into captured replies). */
    for (size_t i = 0; g->cells != NULL && i < g->n; i++)
        bd_api_close(g->cells[i]);
    while (g->pending != NULL) {
        rq_t *q = g->pending;
        bd_reply_error(q->real, 503, "ServiceUnavailable", "", "berthd is stopping");
        rq_free(q);
    }
    json_decref(g->where);
    free(g->cells);
    free(g->ccfg);
    free(g);
}

/* Contract: region.h. */
void bd_region_metrics(bd_region_t *g, struct evbuffer *out)
{
    /* The cells' API metrics added up, then the region's per cell. */
    api_metrics_sum(g->cells, g->n, out);
    evbuffer_add_printf(out, "# HELP berthd_region_creates_total Container groups created, "
                             "by the cell that took them.\n"
                             "# TYPE berthd_region_creates_total counter\n");
    for (size_t i = 0; i < g->n; i++)
        evbuffer_add_printf(out, "berthd_region_creates_total{cell=\"%s\"} %llu\n",
                            g->ccfg[i].cell, (unsigned long long)g->creates[i]);
    evbuffer_add_printf(out, "# HELP berthd_region_overflows_total Creates a cell without "
                             "room passed to the next.\n"
                             "# TYPE berthd_region_overflows_total counter\n"
                             "berthd_region_overflows_total %llu\n",
                        (unsigned long long)g->overflows);
    evbuffer_add_printf(out, "# HELP berthd_region_cell_up Whether the cell's Redis answered "
                             "the last PING (/healthz needs every cell's).\n"
                             "# TYPE berthd_region_cell_up gauge\n");
    for (size_t i = 0; i < g->n; i++) {
        char why[8];
        evbuffer_add_printf(out, "berthd_region_cell_up{cell=\"%s\"} %d\n", g->ccfg[i].cell,
                            bd_api_healthy(g->cells[i], why, sizeof why) ? 1 : 0);
    }
    evbuffer_add_printf(out, "# HELP berthd_region_hosts Hosts in each cell's replica.\n"
                             "# TYPE berthd_region_hosts gauge\n");
    for (size_t i = 0; i < g->n; i++)
        evbuffer_add_printf(
            out, "berthd_region_hosts{cell=\"%s\"} %zu\n", g->ccfg[i].cell,
            berth_engine_host_count(berth_store_async_engine(bd_api_async(g->cells[i], NULL))));
}

/* Contract: region.h. */
bool bd_region_healthy(bd_region_t *g, char *why, size_t cap)
{
    for (size_t i = 0; i < g->n; i++)
        if (!bd_api_healthy(g->cells[i], why, cap))
            return false;
    return true;
}

/* Contract: region.h. */
berth_store_async_t *bd_region_async_of(bd_region_t *g, const char *key)
{
    json_t *i = key != NULL ? json_object_get(g->where, key) : NULL;
    size_t cell = json_is_integer(i) ? (size_t)json_integer_value(i) : 0;
    return bd_api_async(g->cells[cell < g->n ? cell : 0], NULL);
}
