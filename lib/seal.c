/*
 * lib/seal.c: sealing a document's secrets at rest (seal.h): the key file,
 * AES-256-GCM with a synthetic nonce through OpenSSL's EVP interface, and
 * the one walk over a group's secrets that sealing, unsealing and the
 * checks share.
 *
 * It must never log, print or put into an error a key or a secret's value,
 * and it wipes every buffer that held one before freeing it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base64.h"
#include "seal.h"

#define KEY_BYTES 32
#define NONCE_BYTES 12
#define TAG_BYTES 16
#define KEY_FILE_MAX 65536          /* bytes read of a key file             */

typedef struct seal_key {
    char id[BERTH__SEAL_KEY_ID_MAX + 1];
    unsigned char cipher[KEY_BYTES];    /* AES-256-GCM key                  */
    unsigned char nonce[KEY_BYTES];     /* HMAC key of the synthetic nonce  */
} seal_key_t;

struct berth__keyring {
    size_t n;
    seal_key_t keys[BERTH__SEAL_KEYS_MAX];   /* keys[0] seals               */
};

/* ---- the key file -------------------------------------------------------- */

static bool key_id_ok(const char *s, size_t n)
{
    if (n == 0 || n > BERTH__SEAL_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int hex_nibble(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The 256-bit key written as s[0..n): 64 hex digits or canonical base64.
 * 0, or -1 when it is neither or not 32 bytes. */
static int key_decode(const char *s, size_t n, unsigned char out[KEY_BYTES])
{
    if (n == 2 * KEY_BYTES) {
        bool hex = true;
        for (size_t i = 0; hex && i < KEY_BYTES; i++) {
            int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);
            hex = hi >= 0 && lo >= 0;
            out[i] = (unsigned char)(hex ? hi << 4 | lo : 0);
        }
        if (hex)
            return 0;
    }
    char text[64];
    if (n >= sizeof text)
        return -1;
    memcpy(text, s, n);
    text[n] = '\0';
    unsigned char *raw = NULL;
    size_t len = 0;
    int rc = -1;
    if (berth__base64_is_valid(text) && berth__base64_decode(text, &raw, &len) == 0) {
        if (len == KEY_BYTES) {
            memcpy(out, raw, KEY_BYTES);
            rc = 0;
        }
        OPENSSL_cleanse(raw, len);
        free(raw);
    }
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

/* Derives the cipher and nonce keys of one key file key. */
static int key_derive(const unsigned char raw[KEY_BYTES], seal_key_t *k)
{
    static const char cipher_label[] = "berth seal v1 aes-256-gcm";
    static const char nonce_label[] = "berth seal v1 nonce";
    unsigned int n1 = 0, n2 = 0;
    if (HMAC(EVP_sha256(), raw, KEY_BYTES, (const unsigned char *)cipher_label,
             sizeof cipher_label - 1, k->cipher, &n1) == NULL ||
        HMAC(EVP_sha256(), raw, KEY_BYTES, (const unsigned char *)nonce_label,
             sizeof nonce_label - 1, k->nonce, &n2) == NULL ||
        n1 != KEY_BYTES || n2 != KEY_BYTES)
        return -1;
    return 0;
}

/* One line of the key file (NUL-terminated, no newline).  0, 1 for a line
 * without a key, or -1 with err set. */
static int key_line(berth__keyring_t *ring, char *line, const char *path, unsigned lineno,
                    berth_error_t *err)
{
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t end = strlen(p);
    while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
        end--;
    p[end] = '\0';
    if (*p == '\0' || *p == '#')
        return 1;
    size_t idn = strcspn(p, " \t");
    char *key = p + idn;
    while (*key == ' ' || *key == '\t')
        key++;
    size_t keyn = strcspn(key, " \t");
    if (!key_id_ok(p, idn)) {
        berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                        "%s:%u: a key id is 1 to %d of A-Z a-z 0-9 . _ -", path, lineno,
                        BERTH__SEAL_KEY_ID_MAX);
        return -1;
    }
    if (keyn == 0 || key[keyn] != '\0') {
        berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                        "%s:%u: a line is \"KEYID KEY\", with nothing after the key", path,
                        lineno);
        return -1;
    }
    char id[BERTH__SEAL_KEY_ID_MAX + 1];
    memcpy(id, p, idn);
    id[idn] = '\0';
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].id, id) == 0) {
            berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                            "%s:%u: key id '%s' is given twice", path, lineno, id);
            return -1;
        }
    }
    if (ring->n == BERTH__SEAL_KEYS_MAX) {
        berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                        "%s:%u: a key file holds at most %d keys", path, lineno,
                        BERTH__SEAL_KEYS_MAX);
        return -1;
    }
    unsigned char raw[KEY_BYTES];
    int rc = key_decode(key, keyn, raw);
    seal_key_t *k = &ring->keys[ring->n];
    if (rc == 0)
        rc = key_derive(raw, k);
    OPENSSL_cleanse(raw, sizeof raw);
    if (rc != 0) {
        berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                        "%s:%u: key '%s' is not 256 bits written as 64 hex digits or as "
                        "base64", path, lineno, id);
        return -1;
    }
    memcpy(k->id, id, idn + 1);
    ring->n++;
    return 0;
}

/* Contract: seal.h. */
int berth__keyring_load(const char *path, berth__keyring_t **out, berth_error_t *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return berth_error_set(err, BERTH_EIO, "KeyFileUnreadable", path,
                               "cannot open the key file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                               "the key file %s is not a regular file", path);
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        return berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                               "the key file %s has mode %04o: group and others must have no "
                               "access to it (chmod 600)", path, (unsigned)(st.st_mode & 07777));
    }
    char *text = malloc(KEY_FILE_MAX + 1);
    berth__keyring_t *ring = calloc(1, sizeof *ring);
    if (text == NULL || ring == NULL) {
        close(fd);
        free(text);
        free(ring);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    size_t len = 0;
    ssize_t got = 0;
    do {
        got = read(fd, text + len, KEY_FILE_MAX + 1 - len);
        if (got > 0)
            len += (size_t)got;
    } while ((got > 0 || (got < 0 && errno == EINTR)) && len <= KEY_FILE_MAX);
    int saved = errno;
    close(fd);
    int rc = 0;
    if (got < 0)
        rc = berth_error_set(err, BERTH_EIO, "KeyFileUnreadable", path,
                             "cannot read the key file %s: %s", path, strerror(saved));
    else if (len > KEY_FILE_MAX)
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                             "the key file %s is larger than %d bytes", path, KEY_FILE_MAX);
    text[len] = '\0';
    if (rc == 0 && memchr(text, '\0', len) != NULL)
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                             "the key file %s holds a NUL byte", path);
    unsigned lineno = 0;
    for (char *line = text, *next = NULL; rc == 0 && line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (key_line(ring, line, path, lineno, err) < 0)
            rc = BERTH_EINVAL;
    }
    if (rc == 0 && ring->n == 0)
        rc = berth_error_set(err, BERTH_EINVAL, "InvalidKeyFile", path,
                             "the key file %s holds no key", path);
    OPENSSL_cleanse(text, len);
    free(text);
    if (rc != 0) {
        berth__keyring_free(ring);
        return rc;
    }
    *out = ring;
    return 0;
}

/* Contract: seal.h. */
void berth__keyring_free(berth__keyring_t *ring)
{
    if (ring == NULL)
        return;
    OPENSSL_cleanse(ring, sizeof *ring);
    free(ring);
}

/* Contract: seal.h. */
const char *berth__keyring_sealing_id(const berth__keyring_t *ring)
{
    return ring->keys[0].id;
}

/* ---- one value ----------------------------------------------------------- */

/* Contract: seal.h. */
bool berth__sealed_is(const char *s)
{
    return s != NULL && strncmp(s, BERTH__SEAL_PREFIX, sizeof BERTH__SEAL_PREFIX - 1) == 0;
}

/* AES-256-GCM of in[0..n) under key with nonce and aad into out (n bytes)
 * and tag.  `encrypt` 0 decrypts and checks tag.  0 or -1. */
static int gcm(bool encrypt, const seal_key_t *k, const unsigned char *nonce,
               const unsigned char *in, size_t n, unsigned char *out, unsigned char *tag)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    size_t idn = strlen(k->id);
    int aad = 0, len = 0, fin = 0;
    int ok = ctx != NULL && n <= (size_t)INT32_MAX &&
             EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, encrypt) == 1 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_BYTES, NULL) == 1 &&
             EVP_CipherInit_ex(ctx, NULL, NULL, k->cipher, nonce, encrypt) == 1 &&
             EVP_CipherUpdate(ctx, NULL, &aad, (const unsigned char *)k->id, (int)idn) == 1 &&
             (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, (int)n) == 1) &&
             (encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_BYTES, tag) == 1) &&
             EVP_CipherFinal_ex(ctx, out + len, &fin) == 1 &&
             (!encrypt || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_BYTES, tag) == 1);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

/* Contract: seal.h. */
int berth__seal(const berth__keyring_t *ring, const char *clear, char **out)
{
    *out = NULL;
    const seal_key_t *k = &ring->keys[0];
    size_t idn = strlen(k->id), n = strlen(clear);
    size_t total = 1 + idn + NONCE_BYTES + n + TAG_BYTES;
    unsigned char *blob = malloc(total);
    if (blob == NULL)
        return BERTH_ENOMEM;
    blob[0] = (unsigned char)idn;
    memcpy(blob + 1, k->id, idn);
    unsigned char *nonce = blob + 1 + idn;
    /* The synthetic nonce: an HMAC of the key id and the clear value, so
     * that equal values seal equal and distinct ones (barring a 96-bit
     * collision) never share a nonce. */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int macn = 0;
    unsigned char *msg = malloc(1 + idn + n);
    int rc = BERTH_ENOMEM;
    if (msg != NULL) {
        memcpy(msg, blob, 1 + idn);
        memcpy(msg + 1 + idn, clear, n);
        if (HMAC(EVP_sha256(), k->nonce, KEY_BYTES, msg, 1 + idn + n, mac, &macn) != NULL &&
            macn >= NONCE_BYTES) {
            memcpy(nonce, mac, NONCE_BYTES);
            if (gcm(true, k, nonce, (const unsigned char *)clear, n, nonce + NONCE_BYTES,
                    nonce + NONCE_BYTES + n) == 0)
                rc = 0;
        }
        OPENSSL_cleanse(msg, 1 + idn + n);
        free(msg);
    }
    OPENSSL_cleanse(mac, sizeof mac);
    char *b64 = rc == 0 ? berth__base64_encode(blob, total, BERTH__BASE64_STANDARD) : NULL;
    free(blob);
    if (b64 == NULL)
        return BERTH_ENOMEM;
    char *s = NULL;
    if (asprintf(&s, "%s%s", BERTH__SEAL_PREFIX, b64) < 0)
        s = NULL;
    free(b64);
    if (s == NULL)
        return BERTH_ENOMEM;
    *out = s;
    return 0;
}

/* Contract: seal.h. */
int berth__unseal(const berth__keyring_t *ring, const char *sealed, char **out,
                  berth_error_t *err)
{
    *out = NULL;
    if (!berth__sealed_is(sealed))
        return berth_error_set(err, BERTH_EINVAL, "SecretNotSealed", "",
                               "the value is not sealed");
    const char *b64 = sealed + sizeof BERTH__SEAL_PREFIX - 1;
    unsigned char *blob = NULL;
    size_t len = 0;
    if (!berth__base64_is_valid(b64) || berth__base64_decode(b64, &blob, &len) != 0) {
        return berth_error_set(err, BERTH_EINVAL, "SecretMalformed", "",
                               "the sealed value is not base64 after its prefix");
    }
    size_t idn = len > 0 ? blob[0] : 0;
    if (len < 1 + idn + NONCE_BYTES + TAG_BYTES || !key_id_ok((const char *)blob + 1, idn)) {
        free(blob);
        return berth_error_set(err, BERTH_EINVAL, "SecretMalformed", "",
                               "the sealed value is too short or names no valid key id");
    }
    char id[BERTH__SEAL_KEY_ID_MAX + 1];
    memcpy(id, blob + 1, idn);
    id[idn] = '\0';
    const seal_key_t *k = NULL;
    for (size_t i = 0; i < ring->n && k == NULL; i++)
        if (strcmp(ring->keys[i].id, id) == 0)
            k = &ring->keys[i];
    if (k == NULL) {
        free(blob);
        return berth_error_set(err, BERTH_EINVAL, "SecretKeyUnknown", "",
                               "the value is sealed under key '%s', which the key file does "
                               "not hold", id);
    }
    const unsigned char *nonce = blob + 1 + idn;
    size_t n = len - 1 - idn - NONCE_BYTES - TAG_BYTES;
    char *clear = malloc(n + 1);
    if (clear == NULL) {
        free(blob);
        return berth_error_set(err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    }
    int rc = gcm(false, k, nonce, nonce + NONCE_BYTES, n, (unsigned char *)clear,
                 (unsigned char *)nonce + NONCE_BYTES + n);
    free(blob);
    clear[n] = '\0';
    if (rc != 0 || memchr(clear, '\0', n) != NULL) {
        OPENSSL_cleanse(clear, n);
        free(clear);
        return rc != 0 ? berth_error_set(err, BERTH_EINVAL, "SecretTampered", "",
                                         "the value sealed under key '%s' fails its "
                                         "authentication: it was altered, or sealed under "
                                         "another key of that id", id)
                       : berth_error_set(err, BERTH_EINVAL, "SecretMalformed", "",
                                         "the value sealed under key '%s' holds a NUL byte",
                                         id);
    }
    *out = clear;
    return 0;
}

/* ---- the walk over a group's secrets --------------------------------------- */

typedef enum walk_mode {
    WALK_SEAL,
    WALK_UNSEAL,
    WALK_CLEAR,                     /* report the secrets stored in clear   */
    WALK_ANY                        /* report every secret                  */
} walk_mode_t;

typedef struct walk {
    walk_mode_t mode;
    const berth__keyring_t *ring;
    berth_error_t *err;
    berth__secret_path_cb cb;
    void *data;
    int found;
    int rc;                         /* first failure                        */
    bool stop;                      /* cb asked to stop, or a failure       */
    char path[BERTH_ERROR_TARGET_MAX];
} walk_t;

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void walk_fail(walk_t *w, int rc)
{
    w->rc = rc;
    w->stop = true;
    if (w->err != NULL)
        snprintf(w->err->target, sizeof w->err->target, "%s", w->path);
}

static void walk_report(walk_t *w)
{
    w->found++;
    if (w->cb != NULL && w->cb(w->path, w->data) != 0)
        w->stop = true;
}

/* Whether v is sealed under a key of w's ring. */
static bool unseals(walk_t *w, const char *v)
{
    char *clear = NULL;
    if (!berth__sealed_is(v) || berth__unseal(w->ring, v, &clear, NULL) != 0)
        return false;
    wipe_free(clear);
    return true;
}

/* One secret held as a string in *slot (NULL: absent), its path in w->path. */
static void walk_string(walk_t *w, char **slot)
{
    if (w->stop || *slot == NULL)
        return;
    char *v = *slot, *next = NULL;
    int rc = 0;
    switch (w->mode) {
    case WALK_SEAL:
        if (!unseals(w, v) && (rc = berth__seal(w->ring, v, &next)) != 0)
            berth_error_set(w->err, rc, "OutOfMemory", "", "out of memory");
        break;
    case WALK_UNSEAL:
        if (berth__sealed_is(v)) {
            rc = w->ring != NULL ? berth__unseal(w->ring, v, &next, w->err)
                                 : berth_error_set(w->err, BERTH_EINVAL, "SecretKeyMissing", "",
                                                   "the value is sealed and no key file was "
                                                   "given");
        }
        break;
    case WALK_CLEAR:
        if (!berth__sealed_is(v))
            walk_report(w);
        break;
    case WALK_ANY:
        walk_report(w);
        break;
    }
    if (rc != 0) {
        walk_fail(w, rc);
    } else if (next != NULL) {
        wipe_free(v);
        *slot = next;
    }
}

/* A secret held in a JSON object's member `name` (a verbatim member):
 * as_json, the text of its JSON value is what is sealed (protectedSettings);
 * otherwise it must be a string (workspaceKey).  Sets *changed. */
static void walk_json(walk_t *w, json_t *obj, const char *name, bool as_json, bool *changed)
{
    json_t *v = json_object_get(obj, name);
    if (w->stop || v == NULL)
        return;
    const char *s = json_string_value(v);
    bool sealed = s != NULL && berth__sealed_is(s);
    if (w->mode == WALK_CLEAR || w->mode == WALK_ANY) {
        if (w->mode == WALK_ANY || !sealed)
            walk_report(w);
        return;
    }
    if (w->mode == WALK_UNSEAL && !sealed)
        return;                     /* a clear value stays as it is         */
    if (w->mode == WALK_SEAL && sealed && unseals(w, s))
        return;
    char *text = NULL;
    if (w->mode == WALK_SEAL && as_json)
        text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER |
                                 JSON_REAL_PRECISION(17));
    else if (s != NULL)
        text = strdup(s);
    else
        return;                     /* not a string: the model's checks speak */
    if (text == NULL) {
        walk_fail(w, berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory"));
        return;
    }
    walk_string(w, &text);
    json_t *nv = NULL;
    if (!w->stop) {
        nv = w->mode == WALK_UNSEAL && as_json ? json_loads(text, JSON_DECODE_ANY, NULL)
                                               : json_string(text);
        if (nv == NULL)
            walk_fail(w, berth_error_set(w->err, BERTH_EINVAL, "SecretMalformed", "",
                                         "the unsealed value is not the JSON it was sealed "
                                         "from"));
    }
    wipe_free(text);
    if (nv != NULL && json_object_set_new(obj, name, nv) == 0)
        *changed = true;
}

/* The secrets in the properties' verbatim members (diagnostics, extensions). */
static void walk_extra(walk_t *w, char **extra)
{
    if (w->stop || *extra == NULL)
        return;
    json_t *p = json_loads(*extra, 0, NULL);
    if (!json_is_object(p)) {
        json_decref(p);
        snprintf(w->path, sizeof w->path, "properties");
        walk_fail(w, berth_error_set(w->err, BERTH_EINVAL, "InvalidDocument", "",
                                     "the properties' verbatim members are not a JSON object"));
        return;
    }
    bool changed = false;
    json_t *la = json_object_get(json_object_get(p, "diagnostics"), "logAnalytics");
    if (json_is_object(la)) {
        snprintf(w->path, sizeof w->path, "properties.diagnostics.logAnalytics.workspaceKey");
        walk_json(w, la, "workspaceKey", false, &changed);
    }
    json_t *ext = json_object_get(p, "extensions");
    for (size_t i = 0; json_is_array(ext) && i < json_array_size(ext); i++) {
        json_t *props = json_object_get(json_array_get(ext, i), "properties");
        if (!json_is_object(props))
            continue;
        snprintf(w->path, sizeof w->path, "properties.extensions[%zu].properties."
                 "protectedSettings", i);
        walk_json(w, props, "protectedSettings", true, &changed);
    }
    if (changed && !w->stop) {
        char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        if (text == NULL) {
            walk_fail(w, berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "",
                                         "out of memory"));
        } else {
            wipe_free(*extra);
            *extra = text;
        }
    }
    json_decref(p);
}

/* Visits every secret of g in document order.  The group is const to the
 * reporting modes, which change nothing. */
static int walk_group(walk_t *w, berth_group_t *g)
{
    static const char *const lists[2] = {"initContainers", "containers"};
    for (int l = 0; l < 2 && !w->stop; l++) {
        berth_container_t *cs = l == 0 ? g->init_containers : g->containers;
        size_t nc = l == 0 ? g->ninit_containers : g->ncontainers;
        for (size_t i = 0; i < nc && !w->stop; i++) {
            for (size_t j = 0; j < cs[i].nenv && !w->stop; j++) {
                snprintf(w->path, sizeof w->path,
                         "properties.%s[%zu].properties.environmentVariables[%zu].secureValue",
                         lists[l], i, j);
                walk_string(w, &cs[i].env[j].secure_value);
            }
        }
    }
    for (size_t i = 0; i < g->nvolumes && !w->stop; i++) {
        berth_volume_t *v = &g->volumes[i];
        if (v->kind == BERTH_VOLUME_AZURE_FILE) {
            snprintf(w->path, sizeof w->path, "properties.volumes[%zu].azureFile."
                     "storageAccountKey", i);
            walk_string(w, &v->storage_account_key);
        }
        for (size_t k = 0; v->kind == BERTH_VOLUME_SECRET && k < v->nsecret_items && !w->stop;
             k++) {
            snprintf(w->path, sizeof w->path, "properties.volumes[%zu].secret.%s", i,
                     v->secret_items[k].name != NULL ? v->secret_items[k].name : "");
            walk_string(w, &v->secret_items[k].value);
        }
    }
    for (size_t i = 0; i < g->ncredentials && !w->stop; i++) {
        snprintf(w->path, sizeof w->path, "properties.imageRegistryCredentials[%zu].password",
                 i);
        walk_string(w, &g->credentials[i].password);
    }
    walk_extra(w, &g->properties_extra_json);
    return w->rc != 0 ? w->rc : w->found;
}

/* Contract: seal.h. */
int berth__seal_group(const berth__keyring_t *ring, berth_group_t *group, berth_error_t *err)
{
    walk_t w = {.mode = WALK_SEAL, .ring = ring, .err = err};
    int rc = walk_group(&w, group);
    return rc < 0 ? rc : 0;
}

/* Contract: seal.h. */
int berth__unseal_group(const berth__keyring_t *ring, berth_group_t *group,
                        berth_error_t *err)
{
    walk_t w = {.mode = WALK_UNSEAL, .ring = ring, .err = err};
    int rc = walk_group(&w, group);
    return rc < 0 ? rc : 0;
}

/* Contract: seal.h. */
int berth__secrets_clear(const berth_group_t *group, berth__secret_path_cb cb, void *data)
{
    walk_t w = {.mode = WALK_CLEAR, .cb = cb, .data = data};
    return walk_group(&w, (berth_group_t *)group);
}

static int first_path(const char *path, void *data)
{
    walk_t *w = data;
    snprintf(w->path, sizeof w->path, "%s", path);
    return 1;
}

/* Contract: seal.h. */
bool berth__secrets_any(const berth_group_t *group, char *path, size_t size)
{
    walk_t found = {.mode = WALK_ANY};
    walk_t w = {.mode = WALK_ANY, .cb = first_path, .data = &found};
    walk_group(&w, (berth_group_t *)group);
    if (size > 0)
        snprintf(path, size, "%s", w.found > 0 ? found.path : "");
    return w.found > 0;
}
