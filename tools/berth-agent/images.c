/*
 * images.c: the images the runtime holds, reported to the cell for
 * placement by image locality (at start, after a pull, and every 30 s).
 * It must never pull or remove an image: it only lists and reports.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"

typedef struct names {
    char **v;
    size_t n, cap;
} names_t;

static void image_cb(const char *image, void *data)
{
    names_t *ns = data;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **p = realloc(ns->v, cap * sizeof *p);
        if (p == NULL)
            return;
        ns->v = p;
        ns->cap = cap;
    }
    char *copy = strdup(image);
    if (copy != NULL)
        ns->v[ns->n++] = copy;
}

/* Reports the images the runtime holds to the cell, for image locality. */
void images_publish(agent_t *a)
{
    names_t ns = {0};
    berth_error_t err;
    if (a->ops->images(a->ctx, image_cb, &ns, &err) != 0)
        log_warn(NULL, "images not listed: %s", err.message);
    else if (berth_hostlink_images_put(a->link, (const char *const *)ns.v, ns.n, &err) != 0)
        log_warn(NULL, "images not reported: %s", err.message);
    else
        a->images_dirty = false;
    for (size_t i = 0; i < ns.n; i++)
        free(ns.v[i]);
    free(ns.v);
}
