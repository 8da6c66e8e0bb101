/*
 * session-driver.c: a test's side of a plugin's interactive session
 * (session-driver.h).  It must never wait beyond the session's bound.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "session-driver.h"

void test_session_open(test_session_t *t, const berth_plugin_ops_t *ops, void *ctx,
                       const char *key, const char *container, const char *const *argv,
                       size_t argc, bool tty, uint16_t rows, uint16_t cols, int wait_ms)
{
    memset(t, 0, sizeof *t);
    t->ops = ops;
    t->wait_ms = wait_ms;
    berth_session_opts_t o = {.tty = tty, .rows = rows, .cols = cols};
    berth_error_t err;
    int rc = ops->session_open(ctx, key, container, argv, argc, &o, &t->s, &t->fd, &err);
    if (rc != 0)
        fail_msg("session_open: %d %s: %s", rc, err.name, err.message);
    assert_true(t->fd >= 0);
}

bool test_session_pump(test_session_t *t, int ms)
{
    struct pollfd p = {.fd = t->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    size_t n = 0;
    berth_error_t err;
    int rc = t->ops->session_read(t->s, t->out + t->len, sizeof t->out - 1 - t->len, &n, &err);
    if (rc < 0)
        fail_msg("session_read: %d %s: %s", rc, err.name, err.message);
    t->len += n;
    t->out[t->len] = '\0';
    if (rc == 1)
        t->ended = true;
    return n > 0 || rc == 1;
}

void test_session_expect(test_session_t *t, const char *want)
{
    for (int waited = 0; waited < t->wait_ms; waited += 100) {
        const char *at = strstr(t->out + t->seen, want);
        if (at != NULL) {
            t->seen = (size_t)(at - t->out) + strlen(want);
            return;
        }
        if (t->ended)
            break;
        test_session_pump(t, 100);
    }
    fail_msg("output lacks '%s': '%s'", want, t->out);
}

void test_session_to_end(test_session_t *t)
{
    for (int waited = 0; !t->ended && waited < t->wait_ms; waited += 100)
        test_session_pump(t, 100);
    if (!t->ended)
        fail_msg("the output never ended: '%s'", t->out);
}

void test_session_send(test_session_t *t, const char *text)
{
    berth_error_t err;
    int rc = t->ops->session_write(t->s, text, strlen(text), &err);
    if (rc != 0)
        fail_msg("session_write: %d %s: %s", rc, err.name, err.message);
}

int test_session_finish(test_session_t *t)
{
    int code = -2;
    berth_error_t err;
    int rc = t->ops->session_close(t->s, &code, &err);
    t->s = NULL;
    if (rc != 0)
        fail_msg("session_close: %d %s: %s", rc, err.name, err.message);
    return code;
}
