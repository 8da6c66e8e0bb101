/*
 * lib/seal.c: sealing a document's secrets at rest (seal.h): the key file,
 * AES-256-GCM with a synthetic nonce through OpenSSL's EVP interface, and
 * the one walk over a document's secrets (on its JSON, member names read
 * without regard to case as the model reads them) that sealing,
 * unsealing and the checks share.
 *
 * It must never log, print or put into an error a key or a secret's value,
 * and it wipes every buffer that held one before freeing it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- the walk over a document's secrets ------------------------------------- */

typedef enum walk_mode {
    WALK_SEAL,
    WALK_UNSEAL,
    WALK_CLEAR,                     /* report the secrets stored in clear   */
    WALK_ANY,                       /* report every secret                  */
    WALK_REDACT                     /* drop every secret                    */
} walk_mode_t;

typedef struct walk {
    walk_mode_t mode;
    const berth__keyring_t *ring;
    berth_error_t *err;
    berth__secret_path_cb cb;
    void *data;
    int found;                      /* secrets reported                     */
    int seen;                       /* secrets visited                      */
    int rc;                         /* first failure                        */
    bool stop;                      /* cb asked to stop, or a failure       */
    bool changed;                   /* a value was replaced                 */
    const char *prefix;             /* the JSON path of the properties      */
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

/* Sets w->path to the prefix and the printf-formatted rest. */
static void walk_path(walk_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void walk_path(walk_t *w, const char *fmt, ...)
{
    int n = snprintf(w->path, sizeof w->path, "%s", w->prefix);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < sizeof w->path)
        vsnprintf(w->path + n, sizeof w->path - (size_t)n, fmt, ap);
    va_end(ap);
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

/* The member of object o named `name` without regard to case (as the
 * model reads a document), or NULL; its key in *key. */
static json_t *member(json_t *o, const char *name, const char **key)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (strcasecmp(k, name) == 0) {
            if (key != NULL)
                *key = k;
            return v;
        }
    }
    return NULL;
}

/* The secret in member `key` of obj, its path in w->path.  as_json: the
 * text of its JSON value is what is sealed (protectedSettings); otherwise
 * only a string is a secret's value (anything else is the model's to
 * refuse). */
static void walk_value(walk_t *w, json_t *obj, const char *key, bool as_json)
{
    json_t *v = json_object_get(obj, key);
    if (w->stop || v == NULL || json_is_null(v) || (!as_json && !json_is_string(v)))
        return;
    w->seen++;
    if (w->mode == WALK_REDACT) {
        json_object_del(obj, key);
        return;
    }
    const char *s = json_string_value(v);
    bool sealed = s != NULL && berth__sealed_is(s);
    if (w->mode == WALK_CLEAR || w->mode == WALK_ANY) {
        if (w->mode == WALK_ANY || !sealed)
            walk_report(w);
        return;
    }
    if ((w->mode == WALK_UNSEAL && !sealed) || (w->mode == WALK_SEAL && sealed && unseals(w, s)))
        return;                     /* clear stays clear; sealed stays      */
    char *text = NULL, *next = NULL;
    if (w->mode == WALK_SEAL && as_json)
        text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_PRESERVE_ORDER |
                                 JSON_REAL_PRECISION(17));
    else
        text = strdup(s);
    int rc = text == NULL ? BERTH_ENOMEM
             : w->mode == WALK_SEAL
                 ? berth__seal(w->ring, text, &next)
                 : (w->ring != NULL ? berth__unseal(w->ring, text, &next, w->err)
                                    : berth_error_set(w->err, BERTH_EINVAL, "SecretKeyMissing",
                                                      "", "the value is sealed and no key file "
                                                      "was given"));
    wipe_free(text);
    if (rc == BERTH_ENOMEM)
        berth_error_set(w->err, rc, "OutOfMemory", "", "out of memory");
    json_t *nv = NULL;
    if (rc == 0) {
        nv = w->mode == WALK_UNSEAL && as_json ? json_loads(next, JSON_DECODE_ANY, NULL)
                                               : json_string(next);
        if (nv == NULL)
            rc = berth_error_set(w->err, BERTH_EINVAL, "SecretMalformed", "",
                                 "the unsealed value is not the JSON it was sealed from");
    }
    wipe_free(next);
    if (rc == 0 && json_object_set_new(obj, key, nv) != 0)
        rc = berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    if (rc != 0)
        walk_fail(w, rc);
    else
        w->changed = true;
}

/* The secret member `name` of obj (case-insensitive). */
static void walk_member(walk_t *w, json_t *obj, const char *name, bool as_json)
{
    const char *key = NULL;
    if (json_is_object(obj) && member(obj, name, &key) != NULL)
        walk_value(w, obj, key, as_json);
}

/* Visits every secret of a container group's `properties` object in
 * document order (see THE SECRETS in seal.h). */
static void walk_properties(walk_t *w, json_t *p)
{
    static const char *const lists[2] = {"initContainers", "containers"};
    for (int l = 0; l < 2; l++) {
        json_t *cs = member(p, lists[l], NULL);
        for (size_t i = 0; json_is_array(cs) && i < json_array_size(cs) && !w->stop; i++) {
            json_t *env = member(member(json_array_get(cs, i), "properties", NULL),
                                 "environmentVariables", NULL);
            for (size_t j = 0; json_is_array(env) && j < json_array_size(env); j++) {
                walk_path(w, "%s[%zu].properties.environmentVariables[%zu].secureValue",
                          lists[l], i, j);
                walk_member(w, json_array_get(env, j), "secureValue", false);
            }
        }
    }
    json_t *vols = member(p, "volumes", NULL);
    for (size_t i = 0; json_is_array(vols) && i < json_array_size(vols) && !w->stop; i++) {
        json_t *v = json_array_get(vols, i);
        walk_path(w, "volumes[%zu].azureFile.storageAccountKey", i);
        walk_member(w, member(v, "azureFile", NULL), "storageAccountKey", false);
        json_t *files = member(v, "secret", NULL);
        const char *name;
        json_t *item;
        void *tmp;
        json_object_foreach_safe(json_is_object(files) ? files : NULL, tmp, name, item)
        {
            (void)item;
            walk_path(w, "volumes[%zu].secret.%s", i, name);
            walk_value(w, files, name, false);
        }
    }
    json_t *creds = member(p, "imageRegistryCredentials", NULL);
    for (size_t i = 0; json_is_array(creds) && i < json_array_size(creds) && !w->stop; i++) {
        walk_path(w, "imageRegistryCredentials[%zu].password", i);
        walk_member(w, json_array_get(creds, i), "password", false);
    }
    walk_path(w, "diagnostics.logAnalytics.workspaceKey");
    walk_member(w, member(member(p, "diagnostics", NULL), "logAnalytics", NULL), "workspaceKey",
                false);
    json_t *ext = member(p, "extensions", NULL);
    for (size_t i = 0; json_is_array(ext) && i < json_array_size(ext) && !w->stop; i++) {
        walk_path(w, "extensions[%zu].properties.protectedSettings", i);
        walk_member(w, member(json_array_get(ext, i), "properties", NULL), "protectedSettings",
                    true);
    }
}

/* Walks group g's document; when a mode that writes changed a value, the
 * walked document replaces g's contents.  Returns the secrets reported,
 * or the failure. */
static int walk_group(walk_t *w, berth_group_t *g)
{
    char *text = NULL;
    if (berth_group_to_json(g, 0, &text, NULL) != 0)
        return berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    json_t *root = json_loads(text, 0, NULL);
    wipe_free(text);
    if (root == NULL)
        return berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "", "out of memory");
    w->prefix = "properties.";
    walk_properties(w, json_object_get(root, "properties"));
    if (w->rc == 0 && w->changed) {
        /* The model's own reader takes the walked document back, so that
         * the group stays exactly what the model makes of a document. */
        text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        berth_group_t *n = NULL;
        int rc = text == NULL ? berth_error_set(w->err, BERTH_ENOMEM, "OutOfMemory", "",
                                                "out of memory")
                              : berth_group_parse(text, strlen(text), &n, w->err);
        wipe_free(text);
        if (rc != 0) {
            w->rc = rc;             /* err says where, in the model's words */
            w->stop = true;
        } else {
            berth_group_t old = *g;
            *g = *n;
            *n = old;
            berth_group_free(n);
        }
    }
    json_decref(root);
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
    snprintf(data, BERTH_ERROR_TARGET_MAX, "%s", path);
    return 1;
}

/* Contract: seal.h. */
bool berth__secrets_any(const berth_group_t *group, char *path, size_t size)
{
    char first[BERTH_ERROR_TARGET_MAX] = "";
    walk_t w = {.mode = WALK_ANY, .cb = first_path, .data = first};
    walk_group(&w, (berth_group_t *)group);
    if (size > 0)
        snprintf(path, size, "%s", first);
    return w.found > 0;
}

/* Contract: seal.h. */
int berth__seal_properties(const berth__keyring_t *ring, json_t *properties, const char *prefix,
                           char *path, size_t size, berth_error_t *err)
{
    char first[BERTH_ERROR_TARGET_MAX] = "";
    walk_t w = {.mode = ring != NULL ? WALK_SEAL : WALK_ANY, .ring = ring, .err = err,
                .cb = first_path, .data = first, .prefix = prefix};
    if (json_is_object(properties))
        walk_properties(&w, properties);
    if (size > 0)
        snprintf(path, size, "%s", first);
    return w.rc != 0 ? w.rc : w.seen;
}

/* Contract: seal.h. */
void berth__redact_properties(json_t *properties)
{
    walk_t w = {.mode = WALK_REDACT, .prefix = ""};
    if (json_is_object(properties))
        walk_properties(&w, properties);
}

static void wipe(char *s)
{
    if (s != NULL)
        OPENSSL_cleanse(s, strlen(s));
}

/* Contract: seal.h. */
void berth__group_free_wiped(berth_group_t *group)
{
    if (group == NULL)
        return;
    for (int l = 0; l < 2; l++) {
        berth_container_t *cs = l == 0 ? group->init_containers : group->containers;
        size_t nc = l == 0 ? group->ninit_containers : group->ncontainers;
        for (size_t i = 0; i < nc; i++)
            for (size_t j = 0; j < cs[i].nenv; j++)
                wipe(cs[i].env[j].secure_value);
    }
    for (size_t i = 0; i < group->nvolumes; i++) {
        wipe(group->volumes[i].storage_account_key);
        for (size_t k = 0; k < group->volumes[i].nsecret_items; k++)
            wipe(group->volumes[i].secret_items[k].value);
    }
    for (size_t i = 0; i < group->ncredentials; i++)
        wipe(group->credentials[i].password);
    wipe(group->properties_extra_json);     /* workspaceKey, protectedSettings */
    berth_group_free(group);
}
