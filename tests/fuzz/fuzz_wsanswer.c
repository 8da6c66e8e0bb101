/*
 * fuzz_wsanswer.c: libFuzzer target for what `berthctl container exec`
 * reads of berthd's answer to its WebSocket upgrade
 * (tools/berthctl/wsanswer.c).
 *
 * The input is the bytes the server answers, read as ws.c reads them
 * (at most its head buffer, in a heap block of exactly their size), with
 * the Sec-WebSocket-Accept that RFC 6455's sample key expects.
 * Invariants: an answer taken has a head ending in its blank line inside
 * the bytes and a status of three digits; a 101 without fault has the
 * Upgrade, Connection and expected accept headers, and v1 only with the
 * subprotocol echoed; a header found lies inside the head, without blanks
 * around it; a refusal's Content-Length is looked up the same way.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "wsanswer.h"

#define HEAD_MAX 16384              /* ws.c's WS_HEAD_MAX                   */
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Looks `name` up in the head; a value found lies inside it, trimmed. */
static const char *find(const char *head, const char *head_end, const char *name, size_t *vlen)
{
    *vlen = (size_t)-1;
    const char *v = berthctl_ws_header_find(head, head_end, name, vlen);
    if (v != NULL) {
        FUZZ_CHECK(v >= head && *vlen <= (size_t)(head_end - v));
        if (*vlen > 0)
            FUZZ_CHECK(v[0] != ' ' && v[0] != '\t' && v[*vlen - 1] != ' ' &&
                       v[*vlen - 1] != '\t');
        /* Before the value: blanks, then the name's colon. */
        const char *c = v;
        while (c > head && (c[-1] == ' ' || c[-1] == '\t'))
            c--;
        FUZZ_CHECK(c - head > (ptrdiff_t)strlen(name) && c[-1] == ':' &&
                   strncasecmp(c - 1 - strlen(name), name, strlen(name)) == 0);
    }
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HEAD_MAX)
        size = HEAD_MAX;
    char *buf = malloc(size ? size : 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    berthctl_ws_answer_t ans;
    if (berthctl_ws_answer_read(buf, size, ACCEPT, &ans)) {
        FUZZ_CHECK(ans.head_len >= 16 && ans.head_len <= size &&
                   memcmp(buf + ans.head_len - 4, "\r\n\r\n", 4) == 0);
        FUZZ_CHECK(ans.status >= 0 && ans.status <= 999);
        const char *hend = buf + ans.head_len - 2;
        size_t vl;
        if (ans.status == 101 && ans.bad == NULL) {
            FUZZ_CHECK(find(buf, hend, "Upgrade", &vl) != NULL);
            FUZZ_CHECK(find(buf, hend, "Connection", &vl) != NULL);
            const char *a = find(buf, hend, "Sec-WebSocket-Accept", &vl);
            FUZZ_CHECK(a != NULL && vl == strlen(ACCEPT) && memcmp(a, ACCEPT, vl) == 0);
            const char *p = find(buf, hend, "Sec-WebSocket-Protocol", &vl);
            FUZZ_CHECK(ans.v1 == (p != NULL));
        } else {
            FUZZ_CHECK(!ans.v1 && (ans.status == 101 || ans.bad == NULL));
            find(buf, hend, "Content-Length", &vl);
        }
    }
    free(buf);
    return 0;
}
