/* auth — see auth.h. */
#include "auth.h"
#include "jsonin.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <sodium.h>

/* ---- names ---- */

static const char *const auth__roles[] = {"none", "viewer", "clinician", "technician", "admin"};

auth_err auth_role_parse(const char *s, auth_role *out)
{
    for (int r = AUTH_ROLE_VIEWER; r <= AUTH_ROLE_ADMIN; r++)
        if (s && !strcmp(s, auth__roles[r])) {
            *out = (auth_role)r;
            return AUTH_OK;
        }
    return AUTH_EINVAL;
}

const char *auth_role_name(auth_role r)
{
    return r >= AUTH_ROLE_NONE && r <= AUTH_ROLE_ADMIN ? auth__roles[r] : "none";
}

int auth_username_valid(const char *s, size_t n)
{
    if (!s || n < 1 || n > AUTH_USER_MAX || (n == 1 && s[0] == '.') ||
        (n == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != '@' && c != '-')
            return 0;
    }
    return 1;
}

int auth_password_valid(const char *s, size_t n)
{
    if (!s || n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX)
        return 0;
    return !memchr(s, '\0', n) && !memchr(s, '\n', n);
}

/* ---- passwords ---- */

auth_err auth_password_hash(const char *pw, size_t n, char out[AUTH_PWHASH_MAX])
{
    _Static_assert(AUTH_PWHASH_MAX == crypto_pwhash_STRBYTES, "pwhash size");
    if (crypto_pwhash_str(out, pw, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return AUTH_ECRYPTO;
    return AUTH_OK;
}

int auth_password_verify(const char *hash, const char *pw, size_t n)
{
    char h[AUTH_PWHASH_MAX];
    if (!hash || !memchr(hash, '\0', AUTH_PWHASH_MAX))
        return 0;
    memset(h, 0, sizeof h);
    memcpy(h, hash, strlen(hash));
    return crypto_pwhash_str_verify(h, pw, n) == 0;
}

/* ---- secrets ---- */

void auth_secret_new(int with_prefix, char *out, size_t outlen)
{
    unsigned char raw[32];
    char b64[AUTH_SECRET_B64 + 1];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    snprintf(out, outlen, "%s%s", with_prefix ? AUTH_TOKEN_PREFIX : "", b64);
    sodium_memzero(b64, sizeof b64);
}

void auth_token_id_new(char out[AUTH_TOKEN_ID_LEN + 1])
{
    unsigned char raw[AUTH_TOKEN_ID_LEN / 2];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(out, AUTH_TOKEN_ID_LEN + 1, raw, sizeof raw);
}

void auth_key_of(const char *secret, size_t n, char out[AUTH_KEY_HEX + 1])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, n, NULL, 0);
    sodium_bin2hex(out, AUTH_KEY_HEX + 1, h, sizeof h);
}

static int auth__b64url_char(unsigned char c) { return isalnum(c) || c == '-' || c == '_'; }

int auth_secret_valid(const char *s, size_t n, int with_prefix)
{
    size_t p = with_prefix ? 4 : 0;
    if (!s || n != p + AUTH_SECRET_B64 || (with_prefix && memcmp(s, AUTH_TOKEN_PREFIX, 4)))
        return 0;
    for (size_t i = p; i < n; i++)
        if (!auth__b64url_char((unsigned char)s[i]))
            return 0;
    return 1;
}

int auth_csrf_equal(const char *expected, const char *got, size_t gotlen)
{
    size_t n = strlen(expected);
    if (!got || n == 0 || gotlen != n)
        return 0;
    return sodium_memcmp(expected, got, n) == 0;
}

/* ---- headers ---- */

int auth_cookie_find(const char *hdr, size_t n, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name), i = 0;
    while (hdr && i < n) {
        while (i < n && (hdr[i] == ' ' || hdr[i] == '\t' || hdr[i] == ';'))
            i++;
        size_t start = i;
        while (i < n && hdr[i] != ';')
            i++;
        size_t end = i; /* one "k=v" pair in [start, end) */
        while (end > start && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t'))
            end--;
        if (end - start > nl + 1 && !memcmp(hdr + start, name, nl) && hdr[start + nl] == '=') {
            *val = hdr + start + nl + 1;
            *vlen = end - start - nl - 1;
            return 1;
        }
    }
    return 0;
}

int auth_bearer_parse(const char *hdr, size_t n, const char **tok, size_t *tlen)
{
    if (!hdr || n < 6 || strncasecmp(hdr, "bearer", 6) != 0)
        return 0;
    if (n == 6 || (hdr[6] != ' ' && hdr[6] != '\t'))
        return n == 6 ? -1 : 0;
    size_t i = 7;
    while (i < n && (hdr[i] == ' ' || hdr[i] == '\t'))
        i++;
    size_t end = n;
    while (end > i && (hdr[end - 1] == ' ' || hdr[end - 1] == '\t'))
        end--;
    if (end == i)
        return -1;
    for (size_t j = i; j < end; j++)
        if (!auth__b64url_char((unsigned char)hdr[j]))
            return -1;
    *tok = hdr + i;
    *tlen = end - i;
    return 1;
}

/* ---- roles per route ---- */

auth_role auth_route_role(auth_method m, const char *path)
{
    if (!strcmp(path, "/ws"))
        return AUTH_ROLE_VIEWER;
    if (strncmp(path, "/api", 4) != 0 || (path[4] != '/' && path[4] != '\0'))
        return AUTH_ROLE_NONE; /* /healthz, /metrics, static files */
    if (!strcmp(path, "/api/session"))
        return AUTH_ROLE_NONE;
    static const char *const admin[] = {"/api/users", "/api/tokens", "/api/audit"};
    for (size_t i = 0; i < sizeof admin / sizeof *admin; i++) {
        size_t l = strlen(admin[i]);
        if (!strncmp(path, admin[i], l) && (path[l] == '\0' || path[l] == '/'))
            return AUTH_ROLE_ADMIN;
    }
    if (!strncmp(path, "/api/devices/", 13)) {
        const char *slash = strchr(path + 13, '/');
        if (slash && !strcmp(slash, "/config") && m == AUTH_PUT)
            return AUTH_ROLE_TECHNICIAN;
        if (slash && !strcmp(slash, "/commands") && m == AUTH_POST)
            return AUTH_ROLE_CLINICIAN;
    }
    return AUTH_ROLE_VIEWER;
}

auth_role auth_command_role(const char *cmd)
{
    return cmd && (!strcmp(cmd, "ping") || !strcmp(cmd, "identify")) ? AUTH_ROLE_CLINICIAN
                                                                     : AUTH_ROLE_TECHNICIAN;
}

void auth_command_name(const char *body, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    cJSON *j = jsonin_parse(body, len, NULL);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "cmd");
    if (cJSON_IsString(c) && strlen(c->valuestring) < outlen)
        snprintf(out, outlen, "%s", c->valuestring);
    cJSON_Delete(j);
}

/* ---- bodies ---- */

/* The string member `key` of j: 1 copied, 0 absent, -1 not a string or too long. */
static int auth__field(const cJSON *j, const char *key, char *out, size_t outlen, size_t *len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v)
        return 0;
    if (!cJSON_IsString(v))
        return -1;
    size_t n = strlen(v->valuestring);
    if (n >= outlen)
        return -1;
    memcpy(out, v->valuestring, n + 1);
    if (len)
        *len = n;
    return 1;
}

auth_err auth_parse_fields(const char *body, size_t len, auth_fields *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    cJSON *j = jsonin_parse(body, len, NULL);
    auth_err rc = AUTH_EINVAL;
    char role[AUTH_ROLE_NAME_MAX + 1];
    size_t n = 0;
    int r;
    if (!cJSON_IsObject(j)) {
        snprintf(err, errlen, "a JSON object is required");
        goto out;
    }
    if ((r = auth__field(j, "username", out->username, sizeof out->username, &n)) < 0 ||
        (r == 1 && !auth_username_valid(out->username, n))) {
        snprintf(err, errlen, "username must be 1-64 of A-Z a-z 0-9 _ . @ -");
        goto out;
    }
    out->has |= r == 1 ? AUTH_F_USERNAME : 0;
    if ((r = auth__field(j, "name", out->name, sizeof out->name, &n)) < 0 ||
        (r == 1 && !auth_username_valid(out->name, n))) {
        snprintf(err, errlen, "name must be 1-64 of A-Z a-z 0-9 _ . @ -");
        goto out;
    }
    out->has |= r == 1 ? AUTH_F_NAME : 0;
    if ((r = auth__field(j, "role", role, sizeof role, NULL)) < 0 ||
        (r == 1 && auth_role_parse(role, &out->role) != AUTH_OK)) {
        snprintf(err, errlen, "role must be viewer, clinician, technician or admin");
        goto out;
    }
    out->has |= r == 1 ? AUTH_F_ROLE : 0;
    if ((r = auth__field(j, "password", out->password, sizeof out->password, &out->password_len)) < 0 ||
        (r == 1 && !auth_password_valid(out->password, out->password_len))) {
        snprintf(err, errlen, "password must be 8-1024 bytes, without newlines");
        goto out;
    }
    out->has |= r == 1 ? AUTH_F_PASSWORD : 0;
    rc = AUTH_OK;
out:
    if (j) {
        /* The parsed tree holds a copy of the password: wipe it too. */
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "password");
        if (cJSON_IsString(p))
            sodium_memzero(p->valuestring, strlen(p->valuestring));
    }
    cJSON_Delete(j);
    if (rc != AUTH_OK)
        auth_fields_wipe(out);
    return rc;
}

void auth_fields_wipe(auth_fields *f) { sodium_memzero(f->password, sizeof f->password); }

/* ---- throttle ---- */

typedef struct auth__thr {
    char key[80]; /* "u:" user or "a:" address */
    unsigned failures;
    int64_t last_ms, blocked_until_ms;
} auth__thr;

static const void *auth__thr_key(const void *e) { return ((const auth__thr *)e)->key; }
static const idtable_type auth__thr_type = {sizeof(auth__thr), auth__thr_key, idtable_hash_str,
                                            idtable_equal_str};

auth_err auth_throttle_init(auth_throttle *th, size_t max)
{
    th->max = max ? max : 4096;
    return idtable_init(&th->t, &auth__thr_type, 64, th->max) == IDTABLE_OK ? AUTH_OK : AUTH_ENOMEM;
}

void auth_throttle_free(auth_throttle *th) { idtable_free(&th->t); }

static void auth__thr_keyof(char *out, char kind, const char *s)
{
    snprintf(out, sizeof((auth__thr *)0)->key, "%c:%s", kind, s);
}

static int64_t auth__thr_wait(auth_throttle *th, char kind, const char *s, int64_t now)
{
    char k[80];
    if (!s)
        return 0;
    auth__thr_keyof(k, kind, s);
    const auth__thr *e = idtable_find(&th->t, k);
    return e && e->blocked_until_ms > now ? e->blocked_until_ms - now : 0;
}

int64_t auth_throttle_wait(auth_throttle *th, const char *user, const char *addr, int64_t now_ms)
{
    int64_t a = auth__thr_wait(th, 'u', user, now_ms), b = auth__thr_wait(th, 'a', addr, now_ms);
    return a > b ? a : b;
}

/* Full: evict the key failed least recently (a linear scan, only when full). */
static void auth__thr_evict(auth_throttle *th)
{
    size_t it = 0;
    auth__thr *e, *old = NULL;
    while ((e = idtable_next(&th->t, &it)))
        if (!old || e->last_ms < old->last_ms)
            old = e;
    if (old) {
        char k[80];
        memcpy(k, old->key, sizeof k);
        idtable_remove(&th->t, k, NULL);
    }
}

static void auth__thr_fail(auth_throttle *th, char kind, const char *s, int64_t now)
{
    if (!s)
        return;
    auth__thr n = {.failures = 0};
    auth__thr_keyof(n.key, kind, s);
    auth__thr *e = idtable_find(&th->t, n.key);
    if (!e) {
        if (idtable_count(&th->t) >= th->max)
            auth__thr_evict(th);
        void *slot;
        if (idtable_put(&th->t, &n, &slot) != IDTABLE_OK)
            return;
        e = slot;
    }
    /* A key quiet for longer than the cap starts over. */
    if (e->failures && now - e->last_ms > AUTH_THROTTLE_CAP_MS && now >= e->blocked_until_ms)
        e->failures = 0;
    e->failures++;
    e->last_ms = now;
    if (e->failures >= AUTH_THROTTLE_FREE) {
        unsigned k = e->failures - AUTH_THROTTLE_FREE;
        int64_t d = k >= 20 ? AUTH_THROTTLE_CAP_MS : (int64_t)1000 << k;
        e->blocked_until_ms = now + (d > AUTH_THROTTLE_CAP_MS ? AUTH_THROTTLE_CAP_MS : d);
    }
}

void auth_throttle_fail(auth_throttle *th, const char *user, const char *addr, int64_t now_ms)
{
    auth__thr_fail(th, 'u', user, now_ms);
    auth__thr_fail(th, 'a', addr, now_ms);
}

void auth_throttle_ok(auth_throttle *th, const char *user)
{
    char k[80];
    if (!user)
        return;
    auth__thr_keyof(k, 'u', user);
    idtable_remove(&th->t, k, NULL);
}

/* ---- the table ---- */

static const void *auth__entry_key(const void *e) { return ((const auth_entry *)e)->key; }
static const idtable_type auth__entry_type = {sizeof(auth_entry), auth__entry_key,
                                              idtable_hash_str, idtable_equal_str};

auth_err auth_table_init(auth_table *at, size_t max, int64_t idle_ms, int64_t max_ms)
{
    at->idle_ms = idle_ms;
    at->max_ms = max_ms;
    return idtable_init(&at->t, &auth__entry_type, 64, max ? max : 65536) == IDTABLE_OK
               ? AUTH_OK
               : AUTH_ENOMEM;
}

void auth_table_free(auth_table *at) { idtable_free(&at->t); }

auth_err auth_table_add(auth_table *at, const auth_entry *e, int64_t now_ms)
{
    auth_entry c = *e;
    c.local_ms = now_ms;
    c.dead = 0;
    void *slot;
    idtable_err rc = idtable_put(&at->t, &c, &slot);
    if (rc == IDTABLE_EEXIST) {
        c.streams = ((auth_entry *)slot)->streams;
        *(auth_entry *)slot = c;
        return AUTH_OK;
    }
    return rc == IDTABLE_OK ? AUTH_OK : rc == IDTABLE_EFULL ? AUTH_EFULL : AUTH_ENOMEM;
}

static void auth__tomb(auth_entry *e, int64_t now)
{
    e->dead = 1;
    e->local_ms = now;
    sodium_memzero(e->csrf, sizeof e->csrf);
}

auth_entry *auth_table_find(auth_table *at, const char *key, int64_t now_ms, int *expired)
{
    auth_entry *e = idtable_find(&at->t, key);
    if (expired)
        *expired = 0;
    if (!e || e->dead)
        return NULL;
    if (e->kind == AUTH_SESSION &&
        ((!e->streams && now_ms >= e->last_used_ms + at->idle_ms) || now_ms >= e->expires_ms)) {
        auth__tomb(e, now_ms);
        if (expired)
            *expired = 1;
        return NULL;
    }
    return e;
}

auth_entry *auth_table_find_token_id(auth_table *at, const char *id)
{
    size_t it = 0;
    auth_entry *e;
    while ((e = idtable_next(&at->t, &it)))
        if (!e->dead && e->kind == AUTH_TOKEN && !strcmp(e->id, id))
            return e;
    return NULL;
}

auth_err auth_table_kill(auth_table *at, const char *key, int64_t now_ms)
{
    auth_entry *e = idtable_find(&at->t, key);
    if (!e || e->dead)
        return AUTH_ENOTFOUND;
    auth__tomb(e, now_ms);
    return AUTH_OK;
}

size_t auth_table_kill_user(auth_table *at, const char *user, int64_t now_ms)
{
    return auth_table_kill_user_except(at, user, NULL, now_ms);
}

size_t auth_table_kill_user_except(auth_table *at, const char *user, const char *keep, int64_t now_ms)
{
    size_t it = 0, n = 0;
    auth_entry *e;
    while ((e = idtable_next(&at->t, &it)))
        if (!e->dead && e->kind == AUTH_SESSION && !strcmp(e->user, user) && !(keep && !strcmp(e->key, keep))) {
            auth__tomb(e, now_ms);
            n++;
        }
    return n;
}

auth_entry *auth_table_grants(auth_table *at, const char *key, auth_role role, int64_t now_ms, int *expired)
{
    auth_entry *e = auth_table_find(at, key, now_ms, expired);
    return e && e->role == role ? e : NULL;
}

void auth_table_stream_open(auth_table *at, const char *key)
{
    auth_entry *e = idtable_find(&at->t, key);
    if (e && !e->dead)
        e->streams++;
}

void auth_table_stream_close(auth_table *at, const char *key, int64_t now_ms)
{
    auth_entry *e = idtable_find(&at->t, key);
    if (!e || e->dead || !e->streams)
        return;
    e->streams--;
    if (e->kind == AUTH_SESSION && now_ms > e->last_used_ms)
        e->last_used_ms = now_ms; /* in use until now */
}

auth_entry *auth_table_touch(auth_table *at, const char *key, int64_t now_ms)
{
    auth_entry *e = idtable_find(&at->t, key);
    if (!e || e->dead)
        return NULL;
    if (e->kind == AUTH_SESSION && now_ms > e->last_used_ms)
        e->last_used_ms = now_ms;
    return e;
}

void auth_table_set_user_role(auth_table *at, const char *user, auth_role role)
{
    size_t it = 0;
    auth_entry *e;
    while ((e = idtable_next(&at->t, &it)))
        if (!e->dead && e->kind == AUTH_SESSION && !strcmp(e->user, user))
            e->role = role;
}

size_t auth_table_merge(auth_table *at, const auth_entry *snap, size_t n, int64_t now_ms)
{
    /* Which current entries the snapshot shows: a scratch table of its keys. */
    idtable seen;
    size_t misfit = 0;
    if (idtable_init(&seen, &auth__entry_type, n ? n : 1, 0) != IDTABLE_OK)
        return n; /* keep the current table as it is; the next refresh retries */
    for (size_t i = 0; i < n; i++) {
        if (idtable_put(&seen, &snap[i], NULL) == IDTABLE_ENOMEM)
            misfit++;
        if (snap[i].kind == AUTH_USER_MARK)
            continue;
        auth_entry *e = idtable_find(&at->t, snap[i].key);
        if (e) {
            if (e->dead)
                continue; /* a local delete not written yet: it wins */
            int64_t used = e->last_used_ms > snap[i].last_used_ms ? e->last_used_ms : snap[i].last_used_ms;
            int64_t persisted = e->persisted_used_ms;
            unsigned streams = e->streams;
            *e = snap[i];
            e->streams = streams;
            e->last_used_ms = used;
            e->persisted_used_ms = persisted > snap[i].last_used_ms ? persisted : snap[i].last_used_ms;
            e->local_ms = 0;
            continue;
        }
        auth_entry c = snap[i];
        c.local_ms = 0;
        c.dead = 0;
        c.persisted_used_ms = c.last_used_ms;
        c.streams = 0;
        if (idtable_put(&at->t, &c, NULL) != IDTABLE_OK)
            misfit++;
    }
    /* Remove what the snapshot no longer has (unless young and local), and
     * tombstones past their grace. Collected first: no removal while iterating. */
    size_t cap = idtable_count(&at->t), k = 0, it = 0;
    char(*gone)[AUTH_ENTRY_KEY_MAX] = cap ? malloc(cap * sizeof *gone) : NULL;
    auth_entry *e;
    while (gone && (e = idtable_next(&at->t, &it))) {
        int young = e->local_ms && now_ms - e->local_ms < AUTH_LOCAL_GRACE_MS;
        if (young && !e->dead && e->kind == AUTH_SESSION) {
            char mark[AUTH_ENTRY_KEY_MAX];
            snprintf(mark, sizeof mark, "u:%s", e->user);
            young = idtable_find(&seen, mark) != NULL; /* its user is gone: so is it */
        }
        if ((e->dead && !young) || (!e->dead && !young && !idtable_find(&seen, e->key)))
            memcpy(gone[k++], e->key, AUTH_ENTRY_KEY_MAX);
    }
    for (size_t i = 0; i < k; i++)
        idtable_remove(&at->t, gone[i], NULL);
    free(gone);
    idtable_free(&seen);
    return misfit;
}

size_t auth_table_live_count(const auth_table *at)
{
    size_t it = 0, n = 0;
    const auth_entry *e;
    while ((e = idtable_next(&at->t, &it)))
        n += !e->dead;
    return n;
}
