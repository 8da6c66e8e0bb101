/*
 * wsanswer.c: reads berthd's answer to berthctl's WebSocket upgrade (see
 * wsanswer.h).  The bytes come from the network and may be anything: this
 * must never read past the length it is given, never take them for a C
 * string, and never do I/O.
 */
#define _GNU_SOURCE
#include <string.h>
#include <strings.h>

#include "wsanswer.h"

/* Whether the comma-separated header value v[len] holds `token` (any case). */
static bool has_token(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0)
            return true;
    }
    return false;
}

/* Contract: wsanswer.h. */
const char *berthctl_ws_header_find(const char *head, const char *head_end, const char *name,
                                    size_t *vlen)
{
    size_t nl = strlen(name);
    const char *line = memmem(head, (size_t)(head_end - head), "\r\n", 2);
    while (line != NULL && line + 2 < head_end) {
        line += 2;
        const char *eol = memmem(line, (size_t)(head_end - line), "\r\n", 2);
        if (eol == NULL)
            eol = head_end;
        if ((size_t)(eol - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = eol;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Contract: wsanswer.h. */
bool berthctl_ws_answer_read(const char *buf, size_t len, const char *accept,
                             berthctl_ws_answer_t *out)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL || len < 12 || strncmp(buf, "HTTP/1.", 7) != 0 || !is_digit(buf[9]) ||
        !is_digit(buf[10]) || !is_digit(buf[11]))
        return false;
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    out->head_len = (size_t)(end - buf) + 4;
    out->v1 = false;
    out->bad = NULL;
    if (out->status != 101)
        return true;
    const char *hend = end + 2;     /* the last header's CRLF included */
    size_t vl = 0;
    const char *v;
    if ((v = berthctl_ws_header_find(buf, hend, "Upgrade", &vl)) == NULL ||
        !has_token(v, vl, "websocket"))
        out->bad = "no 'Upgrade: websocket'";
    else if ((v = berthctl_ws_header_find(buf, hend, "Connection", &vl)) == NULL ||
             !has_token(v, vl, "upgrade"))
        out->bad = "no 'Connection: Upgrade'";
    else if ((v = berthctl_ws_header_find(buf, hend, "Sec-WebSocket-Accept", &vl)) == NULL ||
             vl != strlen(accept) || memcmp(v, accept, vl) != 0)
        out->bad = "a wrong Sec-WebSocket-Accept";
    else if ((v = berthctl_ws_header_find(buf, hend, "Sec-WebSocket-Protocol", &vl)) != NULL) {
        if (vl == strlen(BERTHCTL_WS_SUBPROTOCOL) && memcmp(v, BERTHCTL_WS_SUBPROTOCOL, vl) == 0)
            out->v1 = true;
        else
            out->bad = "a subprotocol berthctl did not ask for";
    }
    return true;
}
