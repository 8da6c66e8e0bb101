/*
 * server_ws.c: berthd's WebSocket exec sessions.  A GET of
 * /berth/exec/<id> carrying "Upgrade: websocket" (RFC 6455) is answered
 * 101 Switching Protocols and its connection is taken over from evhttp;
 * wslay frames what follows, driven from the bufferevent's callbacks.
 *
 * The handshake's headers and the client's messages are read by
 * wsproto.c's pure functions (fuzzed by tests/fuzz/fuzz_ws.c).
 *
 * The session, as `az container exec` opens it: the first text (or
 * binary) message is the password; the session is then taken through the
 * POST form's path (bd_api_handle() on POST /berth/exec/<id> with
 * {"password"}, through a captured reply, with exec_interactive set:
 * subscription binding, three tries, single use all as there), which
 * answers what to run; the session then runs interactively on the
 * asynchronous store (berth_store_async_session_open(): the agent runs the
 * command through its runtime plugin, under a terminal when the exec
 * request named a terminalSize).  The process's output goes out as binary
 * frames (at most WS_FRAME_MAX bytes each), then a close frame 1000 with
 * the reason "exit status N"; when the session fails, a text frame
 * "berthd: <message>\r\n" and a close frame 4000 + the HTTP status (4403,
 * 4404, 4409, 4503 ...) with the CloudError's code as its reason.
 *
 * The client's later messages: without a subprotocol (the Azure CLI's
 * way), every message is input for the process.  With the subprotocol
 * BD_WS_PROTOCOL ("berth.exec.v1", echoed in the 101) the first byte of each
 * message is a channel: 0 input, 1 end of input, 2 the terminal's new size
 * as "ROWS COLS".  Input sent before the session opened is kept (at most
 * WS_EARLY_MAX) and said first.  Flow control both ways: reading the
 * client stops while WS_BACKLOG_MAX chunks of input wait for Redis, and
 * the session's output is held while more than WS_OUTPUT_HIGH bytes wait
 * for the client.
 *
 * An attach session's run answers its logs route instead: the session then
 * reads the logs through it every second and sends what is new as text
 * frames, until the group stops (close 1000 "the container group
 * stopped"), the client closes, a read fails (4000 + its status), or
 * WS_ATTACH_POLLS polls went by.
 *
 * Authorization: a client that sends a bearer token on the upgrade has it
 * checked as on any request, and the session then serves only a token
 * allowed its subscription; the Azure CLI sends none, and then the
 * password alone opens the session.
 *
 * It must never block the loop, never keep more of a client's bytes than
 * WS_INPUT_MAX plus one message of BD_WS_MSG_MAX (a larger one closes the
 * socket, 1009), and never keep a socket open past its bounds: WS_SILENCE_S
 * without a message before the password, the agent's timeout plus
 * WS_RUN_SLACK_S while the session is taken, WS_SESSION_MAX_S for an
 * interactive session, WS_WRITE_STALL_S while the client takes none of
 * its output, WS_CLOSE_WAIT_S for the client's close frame.  A
 * session outlives its connection only while its take is pending (the
 * take's reply is captured, never sent anywhere); an interactive session
 * is closed with its connection (the agent then ends the process).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <wslay/wslay.h>

#include "server-internal.h"
#include "resource.h"
#include "wsproto.h"

#define WS_PATH "/berth/exec/"
#define WS_INPUT_MAX (256 * 1024)   /* read from the socket before framing   */
#define WS_FRAME_MAX (16 * 1024)    /* the output's text frames              */
#define WS_SILENCE_S 60             /* waiting for the password              */
#define WS_RUN_SLACK_S 10           /* beyond the agent's timeout            */
#define WS_CLOSE_WAIT_S 5           /* for the client's close frame          */
#define WS_ATTACH_POLLS 3600        /* an attach's polls, one a second       */
#define WS_SESSION_MAX_S (8 * 3600) /* an interactive session's life        */
#define WS_EARLY_MAX (256 * 1024)   /* input sent before the session opened  */
#define WS_BACKLOG_MAX 64           /* input chunks not yet taken by Redis   */
#define WS_OUTPUT_HIGH (1024 * 1024) /* output queued for the client: hold   */
#define WS_WRITE_STALL_S 60          /* output the client does not take     */
#define WS_LOGS_QUERY "api-version=2023-05-01"


typedef enum ws_stage {
    WS_PASSWORD = 1,                /* waiting for the first message         */
    WS_RUNNING,                     /* the run is pending                    */
    WS_STREAMING,                   /* attach: the logs polled every second  */
    WS_SESSION,                     /* exec: the interactive session runs    */
    WS_CLOSING                      /* our close frame is queued or sent     */
} ws_stage_t;

struct bd_ws {
    bd_server_t *srv;
    bd_conn_t *conn;                /* NULL once the connection went         */
    struct evhttp_connection *evcon;
    struct bufferevent *bev;
    wslay_event_context_ptr ctx;
    struct event *timer;            /* the stage's bound                     */
    struct event *wake;             /* input waiting, or the run ended       */
    bd_reply_t *run;                /* captured; NULL: no run pending        */
    bool run_ended;
    bool done;                      /* both close frames went: close once
                                     * the output is out                    */
    ws_stage_t stage;
    /* A close frame to send once the data queued before it went (wslay
     * sends control frames first). */
    bool close_pending;
    uint16_t close_code;
    char close_reason[124];
    char id[BD_ID_HEX + 1];
    /* Attach: the logs route polled, what it answered last (sent), and
     * the polls so far (WS_ATTACH_POLLS at most). */
    char *logs_path;
    char *seen;
    size_t seen_len;
    long polls;
    /* The upgrade's token: the subscriptions it may touch (the server's
     * tokens hold them as long as the server lives). */
    bool subs_any;
    const char *const *subs;
    size_t nsubs;
    /* Exec: the interactive session; input the client sent before it
     * opened (kind byte, 4-byte length, bytes); the protocol's channels
     * (BD_WS_PROTOCOL negotiated); reading the client paused for the
     * session's backlog. */
    berth_store_async_session_t *sess;
    struct evbuffer *early;
    bool channels;
    bool paused;
    struct event *resume;
    bool own_timeouts;              /* the socket has the session's bounds   */
};

static void ws_arm(bd_ws_t *ws, long seconds)
{
    struct timeval tv = {(time_t)seconds, 0};
    evtimer_add(ws->timer, &tv);
}

static void ws_free(bd_ws_t *ws)
{
    berth_store_async_session_close(ws->sess);
    if (ws->early != NULL)
        evbuffer_free(ws->early);
    if (ws->resume != NULL)
        event_free(ws->resume);
    if (ws->ctx != NULL)
        wslay_event_context_free(ws->ctx);
    if (ws->timer != NULL)
        event_free(ws->timer);
    if (ws->wake != NULL)
        event_free(ws->wake);
    bd_reply_capture_free(ws->run);
    free(ws->logs_path);
    free(ws->seen);
    free(ws);
}

/* Closes the connection (evhttp frees it and its bd_conn); ws is freed too
 * unless its run is pending.  ws must not be used by the caller after. */
static void ws_close(bd_ws_t *ws)
{
    if (ws->evcon != NULL) {
        struct evhttp_connection *evcon = ws->evcon;
        bufferevent_setcb(ws->bev, NULL, NULL, NULL, NULL);
        if (ws->conn != NULL)
            ws->conn->ws = NULL;
        ws->conn = NULL;
        ws->evcon = NULL;
        ws->bev = NULL;
        evhttp_connection_free(evcon);
    }
    evtimer_del(ws->timer);
    if (ws->resume != NULL)
        evtimer_del(ws->resume);
    berth_store_async_session_close(ws->sess);
    ws->sess = NULL;
    if (ws->run == NULL)
        ws_free(ws);
}

/* Contract: server-internal.h. */
void bd_ws_conn_gone(bd_ws_t *ws)
{
    ws->conn = NULL;
    ws->evcon = NULL;
    ws->bev = NULL;
    evtimer_del(ws->timer);
    if (ws->resume != NULL)
        evtimer_del(ws->resume);
    berth_store_async_session_close(ws->sess);
    ws->sess = NULL;
    if (ws->run == NULL)
        ws_free(ws);
}

/* Sends what wslay has queued; closes the connection once both close
 * frames went and the output is out, or at a write error. */
static void ws_pump(bd_ws_t *ws)
{
    if (wslay_event_send(ws->ctx) != 0) {
        ws_close(ws);
        return;
    }
    if (ws->close_pending && wslay_event_get_queued_msg_count(ws->ctx) == 0) {
        ws->close_pending = false;
        wslay_event_queue_close(ws->ctx, ws->close_code, (const uint8_t *)ws->close_reason,
                                strlen(ws->close_reason));
        if (wslay_event_send(ws->ctx) != 0) {
            ws_close(ws);
            return;
        }
    }
    if (wslay_event_get_close_sent(ws->ctx) && ws->stage != WS_CLOSING) {
        ws->stage = WS_CLOSING;
        ws_arm(ws, WS_CLOSE_WAIT_S);
    }
    if (!wslay_event_want_read(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
        ws->done = true;
        if (evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0)
            ws_close(ws);
    }
}

/* Has a close frame with `code` and `reason` (cut to what a control frame
 * holds) sent after the data queued so far (ws_pump()). */
static void ws_queue_close(bd_ws_t *ws, uint16_t code, const char *reason)
{
    ws->close_pending = true;
    ws->close_code = code;
    snprintf(ws->close_reason, sizeof ws->close_reason, "%s", reason);
}

/* Queues `text` as text frames of at most WS_FRAME_MAX bytes, each cut
 * before a UTF-8 lead byte (the text is valid UTF-8). */
static void ws_queue_text(bd_ws_t *ws, const char *text, size_t len)
{
    while (len > 0) {
        size_t n = len;
        if (n > WS_FRAME_MAX) {
            n = WS_FRAME_MAX;
            while (n > 1 && ((unsigned char)text[n] & 0xC0) == 0x80)
                n--;
        }
        struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)text, n};
        if (wslay_event_queue_msg(ws->ctx, &m) != 0)
            return;
        text += n;
        len -= n;
    }
}

/* Queues output bytes as binary frames of at most WS_FRAME_MAX bytes. */
static void ws_queue_binary(bd_ws_t *ws, const char *bytes, size_t len)
{
    while (len > 0) {
        size_t n = len < WS_FRAME_MAX ? len : WS_FRAME_MAX;
        struct wslay_event_msg m = {WSLAY_BINARY_FRAME, (const uint8_t *)bytes, n};
        if (wslay_event_queue_msg(ws->ctx, &m) != 0)
            return;
        bytes += n;
        len -= n;
    }
}

/* The HTTP status a session's failure stands for: its close code is 4000
 * plus it. */
static int ws_failure_status(const berth_error_t *e)
{
    if (e->code == BERTH_ENOENT)
        return 404;
    if (e->code == BERTH_EINVAL)
        return strcmp(e->name, "ContainerNotRunning") == 0 ||
                       strcmp(e->name, "ContainerGroupNotRunning") == 0
                   ? 409
                   : 400;
    return 503;
}

/* Sends a failure: its message as a text frame, then the close. */
static void ws_fail(bd_ws_t *ws, int status, const char *code, const char *message)
{
    char *line = NULL;
    if (asprintf(&line, "berthd: %s\r\n", message) >= 0) {
        ws_queue_text(ws, line, strlen(line));
        free(line);
    }
    ws_queue_close(ws, (uint16_t)(4000 + status), code);
    ws->stage = WS_CLOSING;
    ws_arm(ws, WS_CLOSE_WAIT_S);
}

/* The session's output, or its end. */
static void ws_session_cb(berth_store_async_session_t *sess, bool ended, const char *bytes,
                          size_t len, int status, int exit_code, const berth_error_t *err,
                          void *data)
{
    bd_ws_t *ws = data;
    if (ws->evcon == NULL || ws->sess != sess)
        return;
    if (!ended) {
        ws_queue_binary(ws, bytes, len);
        if (evbuffer_get_length(bufferevent_get_output(ws->bev)) > WS_OUTPUT_HIGH)
            berth_store_async_session_hold(sess, true); /* ws_write_cb() resumes */
        ws_pump(ws);
        return;
    }
    berth_store_async_session_close(sess);
    ws->sess = NULL;
    if (status == 0) {
        char reason[64];
        snprintf(reason, sizeof reason, "exit status %d", exit_code);
        ws_queue_close(ws, 1000, reason);
        ws->stage = WS_CLOSING;
        ws_arm(ws, WS_CLOSE_WAIT_S);
    } else {
        ws_fail(ws, ws_failure_status(err), err->name, err->message);
    }
    ws_pump(ws);
}

/* Hands one of the client's messages to the session: kind 0 input, 1 end
 * of input, 2 a terminal size ("ROWS COLS"). */
static void ws_session_say(bd_ws_t *ws, uint8_t kind, const uint8_t *bytes, size_t len)
{
    berth_error_t err;
    int rc = 0;
    if (kind == BD_WS_INPUT && len > 0) {
        rc = berth_store_async_session_input(ws->sess, (const char *)bytes, len, &err);
    } else if (kind == BD_WS_EOF) {
        rc = berth_store_async_session_input(ws->sess, NULL, 0, &err);
    } else if (kind == BD_WS_RESIZE) {
        uint16_t rows, cols;
        if (bd_ws_resize_parse(bytes, len, &rows, &cols))
            rc = berth_store_async_session_resize(ws->sess, rows, cols, &err);
    }
    (void)rc; /* a session that ended says so through its callback */
    if (berth_store_async_session_backlog(ws->sess) >= WS_BACKLOG_MAX && !ws->paused) {
        /* Redis has not taken what was sent: stop reading the client. */
        ws->paused = true;
        bufferevent_disable(ws->bev, EV_READ);
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(ws->resume, &tv);
    }
}

/* A message of the client after the password: split into the session's
 * kinds (the protocol's channel byte, or all of it input), said now or
 * kept until the session opens. */
static void ws_input(bd_ws_t *ws, const uint8_t *whole, size_t whole_len)
{
    uint8_t kind;
    const uint8_t *msg;
    size_t len;
    if (!bd_ws_split(ws->channels, whole, whole_len, &kind, &msg, &len))
        return;
    if (ws->sess != NULL && ws->stage == WS_SESSION) {
        ws_session_say(ws, kind, msg, len);
        return;
    }
    if (ws->stage != WS_RUNNING)
        return; /* an attach, or the end: input goes nowhere */
    uint32_t n = (uint32_t)len;
    if (evbuffer_get_length(ws->early) + 5 + len > WS_EARLY_MAX) {
        ws_queue_close(ws, 1009, "too much input before the session started");
        ws->stage = WS_CLOSING;
        ws_arm(ws, WS_CLOSE_WAIT_S);
        return;
    }
    evbuffer_add(ws->early, &kind, 1);
    evbuffer_add(ws->early, &n, 4);
    evbuffer_add(ws->early, msg, len);
}

/* Reading the client again once Redis took the session's input. */
static void ws_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    bd_ws_t *ws = arg;
    if (ws->evcon == NULL || !ws->paused)
        return;
    if (ws->sess != NULL && berth_store_async_session_backlog(ws->sess) >= WS_BACKLOG_MAX / 2) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(ws->resume, &tv);
        return;
    }
    ws->paused = false;
    bufferevent_enable(ws->bev, EV_READ);
    event_active(ws->wake, EV_TIMEOUT, 0); /* what is buffered already */
}

/* The take answered what to run: the session opens. */
static void ws_session_open(bd_ws_t *ws, json_t *d)
{
    char *words = strdup(json_string_value(json_object_get(d, "command")) ?: "");
    const char *argv[BD_COMMAND_WORDS_MAX];
    int argc = words != NULL ? bd_command_split(words, argv, BD_COMMAND_WORDS_MAX) : -1;
    berth_error_t err;
    int rc = argc < 1 ? berth_error_set(&err, BERTH_EINVAL, "InvalidCommand", "command",
                                        "the command is empty or malformed")
                       : berth_store_async_session_open(
                             bd_api_async(ws->srv->api),
                             json_string_value(json_object_get(d, "key")) ?: "",
                             json_string_value(json_object_get(d, "container")) ?: "", argv,
                             (size_t)argc, json_is_true(json_object_get(d, "tty")),
                             (uint16_t)json_integer_value(json_object_get(d, "rows")),
                             (uint16_t)json_integer_value(json_object_get(d, "cols")),
                             bd_api_agent_timeout_ms(ws->srv->api), ws_session_cb, ws,
                             &ws->sess, &err);
    free(words);
    if (rc != 0) {
        ws_fail(ws, ws_failure_status(&err), err.name, err.message);
        return;
    }
    ws->stage = WS_SESSION;
    ws_arm(ws, WS_SESSION_MAX_S);
    /* What the client said while the session was being looked up. */
    uint8_t head[5];
    while (ws->sess != NULL && evbuffer_remove(ws->early, head, 5) == 5) {
        uint32_t n;
        memcpy(&n, head + 1, 4);
        uint8_t *bytes = malloc(n ? n : 1);
        if (bytes == NULL)
            break;
        evbuffer_remove(ws->early, bytes, n);
        ws_session_say(ws, head[0], bytes, n);
        explicit_bzero(bytes, n);
        free(bytes);
    }
    evbuffer_drain(ws->early, evbuffer_get_length(ws->early));
}

/* Attach: sends what is new in the logs' `content` (all of it when the
 * logs no longer start with what was sent: they were cut). */
static void ws_stream(bd_ws_t *ws, json_t *content)
{
    const char *text = json_string_value(content);
    size_t len = text != NULL ? json_string_length(content) : 0;
    size_t from = ws->seen != NULL && ws->seen_len <= len &&
                          memcmp(text, ws->seen, ws->seen_len) == 0
                      ? ws->seen_len
                      : 0;
    if (len > from)
        ws_queue_text(ws, text + from, len - from);
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        if (len > 0)
            memcpy(copy, text, len);
        free(ws->seen);
        ws->seen = copy;
        ws->seen_len = len;
    }
    ws_arm(ws, 1);
}

/* The run ended: its output and exit status, or its error, then close;
 * for an attach, the logs stream starts, or goes on. */
static void ws_run_ended(bd_ws_t *ws)
{
    const char *body = NULL;
    size_t len = 0;
    int status = bd_reply_captured(ws->run, &body, &len);
    json_t *j = body != NULL ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *logs = json_object_get(j, "logs");
    if (status == 200 && ws->stage == WS_STREAMING) {
        ws_stream(ws, json_object_get(j, "content"));
        json_decref(j);
        return;
    }
    if (status == 200 && ws->stage == WS_RUNNING && json_is_string(logs)) {
        ws->logs_path = strdup(json_string_value(logs));
        ws->stage = WS_STREAMING;
        ws_arm(ws, 0);
        json_decref(j);
        if (ws->logs_path == NULL) {
            ws_queue_close(ws, 4503, "ServiceUnavailable");
            ws->stage = WS_CLOSING;
            ws_arm(ws, WS_CLOSE_WAIT_S);
        }
        return;
    }
    if (status == 200 && ws->stage == WS_RUNNING && json_is_object(json_object_get(j, "session"))) {
        ws_session_open(ws, json_object_get(j, "session"));
        json_decref(j);
        return;
    }
    const char *ecode = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    if (ws->stage == WS_STREAMING && status == 409 && ecode != NULL &&
        strcmp(ecode, "ContainerGroupStopped") == 0) {
        ws_queue_close(ws, 1000, "the container group stopped");
    } else if (status == 200) {
        json_t *out = json_object_get(j, "output");
        const char *text = json_string_value(out);
        ws_queue_text(ws, text != NULL ? text : "", text != NULL ? json_string_length(out) : 0);
        char reason[64];
        snprintf(reason, sizeof reason, "exit status %lld",
                 (long long)json_integer_value(json_object_get(j, "exitCode")));
        ws_queue_close(ws, 1000, reason);
    } else {
        json_t *e = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        char *line = NULL;
        if (asprintf(&line, "berthd: %s\r\n", msg != NULL ? msg : "the exec session failed") >= 0) {
            ws_queue_text(ws, line, strlen(line));
            free(line);
        }
        int st = status >= 100 && status <= 999 ? status : 500;
        ws_queue_close(ws, (uint16_t)(4000 + st), code != NULL ? code : "InternalServerError");
    }
    json_decref(j);
    ws->stage = WS_CLOSING;
    ws_arm(ws, WS_CLOSE_WAIT_S);
}

/* A run's answer was recorded (maybe inside bd_api_handle()). */
static void ws_run_notify(void *arg)
{
    bd_ws_t *ws = arg;
    ws->run_ended = true;
    event_active(ws->wake, EV_TIMEOUT, 0);
}

/* Starts the session's run with the password the client sent. */
static void ws_start_run(bd_ws_t *ws, const uint8_t *msg, size_t len)
{
    ws->stage = WS_RUNNING;
    ws_arm(ws, (long)(ws->srv->cfg->agent_timeout_ms / 1000) + WS_RUN_SLACK_S);
    /* A password that is not UTF-8 (or too long to be one) is sent as "",
     * a wrong one: it counts as a try. */
    char *body = bd_ws_password_body(msg, len);
    char path[sizeof WS_PATH + BD_ID_HEX];
    snprintf(path, sizeof path, WS_PATH "%s", ws->id);
    ws->run = bd_reply_capture_new();
    if (body == NULL || ws->run == NULL) {
        free(body);
        bd_reply_capture_free(ws->run);
        ws->run = NULL;
        ws_queue_text(ws, "berthd: out of memory\r\n", 23);
        ws_queue_close(ws, 4503, "ServiceUnavailable");
        return;
    }
    bd_request_t breq = {0};
    breq.method = BD_POST;
    breq.path = path;
    breq.query = "";
    breq.body = body;
    breq.body_len = strlen(body);
    breq.base_url = "";
    breq.any_subscription = ws->srv->tokens == NULL || ws->subs_any;
    breq.subscriptions = ws->subs;
    breq.nsubscriptions = ws->nsubs;
    breq.exec_interactive = true;
    /* Whatever answers the run, now or later, wakes the session: the
     * answer is read from the loop's next turn, never from inside it. */
    bd_reply_capture_notify(ws->run, ws_run_notify, ws);
    bd_api_handle(ws->srv->api, &breq, ws->run);
    free(body);
}

/* ---- wslay's side ------------------------------------------------------------------------ */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                          void *user)
{
    (void)flags;
    bd_ws_t *ws = user;
    int n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
    if (n <= 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
                          int flags, void *user)
{
    (void)flags;
    bd_ws_t *ws = user;
    if (evbuffer_add(bufferevent_get_output(ws->bev), data, len) != 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void ws_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *user)
{
    (void)ctx;
    bd_ws_t *ws = user;
    if (wslay_is_ctrl_frame(arg->opcode))
        return; /* wslay answers pings and close frames itself */
    if (ws->stage == WS_PASSWORD)
        ws_start_run(ws, arg->msg, arg->msg_length);
    else
        ws_input(ws, arg->msg, arg->msg_length);
}

/* ---- the bufferevent's side --------------------------------------------------------------- */

/* Frames what arrived, then sends what that queued. */
static void ws_read(bd_ws_t *ws)
{
    if (ws->paused) {
        ws_pump(ws);
        return;
    }
    if (wslay_event_recv(ws->ctx) != 0) {
        ws_close(ws);
        return;
    }
    ws_pump(ws);
}

static void ws_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    ws_read(arg);
}

static void ws_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    bd_ws_t *ws = arg;
    if (ws->done) {
        ws_close(ws);
        return;
    }
    if (ws->sess != NULL && evbuffer_get_length(bufferevent_get_output(ws->bev)) <
                                WS_OUTPUT_HIGH / 4)
        berth_store_async_session_hold(ws->sess, false);
}

static void ws_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    ws_close(arg); /* EOF, an error: nobody left to talk to */
}

/* The loop's turn after the upgrade (bytes may wait already) or after the
 * run's answer. */
static void ws_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_ws_t *ws = arg;
    if (!ws->own_timeouts && ws->bev != NULL) {
        /* evhttp's idle timeout (reset by every byte) still bounds the
         * socket after the upgrade, and clearing it does not hold: it is
         * replaced here, once evhttp is out of the request's callback, by
         * the session's own bounds: a client silent for as long as a
         * session lasts, or one that takes none of its output for
         * WS_WRITE_STALL_S. */
        struct timeval rd = {WS_SESSION_MAX_S, 0}, wr = {WS_WRITE_STALL_S, 0};
        bufferevent_set_timeouts(ws->bev, &rd, &wr);
        ws->own_timeouts = true;
    }
    if (ws->run_ended && ws->run != NULL) {
        if (ws->evcon == NULL) {
            /* The client left while the command ran. */
            ws_free(ws);
            return;
        }
        ws_run_ended(ws);
        bd_reply_capture_free(ws->run);
        ws->run = NULL;
    }
    if (ws->evcon != NULL)
        ws_read(ws);
}

/* Attach: reads the logs (their route, through a captured reply), or ends
 * the stream at its bound. */
static void ws_poll(bd_ws_t *ws)
{
    if (ws->polls++ >= WS_ATTACH_POLLS || ws->run != NULL) {
        ws_queue_close(ws, 1000, "the attach reached its time limit");
        ws->stage = WS_CLOSING;
        ws_arm(ws, WS_CLOSE_WAIT_S);
        ws_pump(ws);
        return;
    }
    ws->run = bd_reply_capture_new();
    if (ws->run == NULL) {
        ws_arm(ws, 1);
        return;
    }
    ws->run_ended = false;
    bd_request_t breq = {0};
    breq.method = BD_GET;
    breq.path = ws->logs_path;
    breq.query = WS_LOGS_QUERY;
    breq.body = "";
    breq.base_url = "";
    /* The session's take checked the token against its subscription. */
    breq.any_subscription = true;
    bd_reply_capture_notify(ws->run, ws_run_notify, ws);
    bd_api_handle(ws->srv->api, &breq, ws->run);
}

/* The stage's bound passed: a close frame (1008), then, should the client
 * not answer it, the connection closes; for an attach, the next poll. */
static void ws_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bd_ws_t *ws = arg;
    if (ws->evcon == NULL)
        return;
    if (ws->stage == WS_CLOSING) {
        ws_close(ws);
        return;
    }
    if (ws->stage == WS_STREAMING) {
        ws_poll(ws);
        return;
    }
    if (ws->stage == WS_SESSION) {
        berth_store_async_session_close(ws->sess);
        ws->sess = NULL;
    }
    ws_queue_close(ws, 1008, ws->stage == WS_PASSWORD ? "no password within 60 s"
                             : ws->stage == WS_SESSION ? "the session reached its time limit"
                                                       : "the command did not end in time");
    ws->stage = WS_CLOSING;
    ws_arm(ws, WS_CLOSE_WAIT_S);
    ws_pump(ws);
}

/* ---- the upgrade -------------------------------------------------------------------------- */

/* Contract: server-internal.h. */
bool bd_ws_wanted(struct evhttp_request *req, const char *path)
{
    if (strncmp(path, WS_PATH, strlen(WS_PATH)) != 0)
        return false;
    const char *up = evhttp_find_header(evhttp_request_get_input_headers(req), "Upgrade");
    return bd_ws_has_token(up, "websocket");
}

/* Contract: server-internal.h. */
void bd_ws_upgrade(bd_server_t *srv, struct evhttp_request *req, bd_reply_t *r, bd_conn_t *c)
{
    bd_reply_route(r, "Berth_ExecSocket");
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *id = r->path + strlen(WS_PATH);
    const char *key = evhttp_find_header(h, "Sec-WebSocket-Key");
    const char *version = evhttp_find_header(h, "Sec-WebSocket-Version");
    char accept[32];
    if (!bd_valid_hex_id(id)) {
        bd_reply_error(r, 400, "InvalidRequestUri", "",
                       "the request path is not valid: bad exec session id");
        return;
    }
    if (!bd_ws_has_token(evhttp_find_header(h, "Connection"), "upgrade")) {
        bd_reply_error(r, 400, "InvalidWebSocketHandshake", "",
                       "a WebSocket handshake needs the header 'Connection: Upgrade'");
        return;
    }
    if (version == NULL || strcmp(version, "13") != 0) {
        static const char *const v13[] = {"Sec-WebSocket-Version", "13", NULL};
        berth_error_t err;
        berth_error_set(&err, BERTH_EINVAL, "UpgradeRequired", "",
                        "berthd speaks WebSocket version 13 (RFC 6455) only");
        char *s = NULL;
        json_t *body = berth_error_to_json(&err, &s) == 0 ? json_loads(s, 0, NULL) : NULL;
        berth_free(s);
        bd_reply_send(r, 426, body, v13);
        return;
    }
    if (key == NULL || !bd_ws_accept_key(key, accept)) {
        bd_reply_error(r, 400, "InvalidWebSocketHandshake", "",
                       "the header Sec-WebSocket-Key must be the base64 of 16 bytes");
        return;
    }
    /* A token, when one is sent, is checked as on any request; without
     * one (the Azure CLI's case), the password alone opens the session. */
    bd_request_t auth = {0};
    auth.any_subscription = true;
    if (srv->tokens != NULL && evhttp_find_header(h, "Authorization") != NULL) {
        auth.path = r->path;
        if (bd_authorize(srv, req, r, &auth) != 0)
            return;
        bd_reply_route(r, "Berth_ExecSocket");
    }
    if (srv->api == NULL) {
        bd_reply_error(r, 503, "ServiceUnavailable", "", "berthd is starting");
        return;
    }
    bd_ws_t *ws = calloc(1, sizeof *ws);
    static const struct wslay_event_callbacks callbacks = {.recv_callback = ws_recv_cb,
                                                           .send_callback = ws_send_cb,
                                                           .on_msg_recv_callback = ws_msg_cb};
    if (ws != NULL) {
        ws->srv = srv;
        ws->timer = evtimer_new(srv->base, ws_timer_cb, ws);
        ws->wake = event_new(srv->base, -1, 0, ws_wake_cb, ws);
        ws->resume = evtimer_new(srv->base, ws_resume_cb, ws);
        ws->early = evbuffer_new();
        if (wslay_event_context_server_init(&ws->ctx, &callbacks, ws) != 0)
            ws->ctx = NULL;
    }
    if (ws == NULL || ws->timer == NULL || ws->wake == NULL || ws->ctx == NULL ||
        ws->resume == NULL || ws->early == NULL) {
        if (ws != NULL)
            ws_free(ws);
        bd_reply_error(r, 503, "ServiceUnavailable", "", "out of memory");
        return;
    }
    wslay_event_config_set_max_recv_msg_length(ws->ctx, BD_WS_MSG_MAX);
    snprintf(ws->id, sizeof ws->id, "%s", id);
    ws->subs_any = auth.any_subscription;
    ws->subs = auth.subscriptions;
    ws->nsubs = auth.nsubscriptions;
    ws->stage = WS_PASSWORD;
    ws->channels =
        bd_ws_has_token(evhttp_find_header(h, "Sec-WebSocket-Protocol"), BD_WS_PROTOCOL);
    ws->conn = c;
    ws->evcon = c->evcon;
    ws->bev = c->bev;

    /* The request is answered here, not through r: logged, then r goes. */
    double secs = bd_elapsed(&r->started);
    bd_metrics_record(srv, r->route, r->method, 101, secs);
    bd_access_log(101, secs, r->method, r->path, r->route, r->remote, r->request_id, true);
    bd_reply_unlink(r);
    c->reply = NULL;
    bd_reply_free(r);

    bd_conn_takeover(c, ws);
    evbuffer_add_printf(bufferevent_get_output(ws->bev),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                        accept,
                        ws->channels ? "Sec-WebSocket-Protocol: " BD_WS_PROTOCOL "\r\n" : "");
    bufferevent_setcb(ws->bev, ws_read_cb, ws_write_cb, ws_event_cb, ws);
    bufferevent_setwatermark(ws->bev, EV_READ, 0, WS_INPUT_MAX);
    bufferevent_setwatermark(ws->bev, EV_WRITE, 0, 0);
    bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
    ws_arm(ws, WS_SILENCE_S);
    /* Frames already read come out at the loop's next turn: evhttp is
     * still in its own callback now. */
    event_active(ws->wake, EV_TIMEOUT, 0);
}
