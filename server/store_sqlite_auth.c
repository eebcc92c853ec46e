/* store_sqlite_auth — access control in the SQLite store: users, API
 * tokens, sessions and the audit trail. Three ways in, one per thread rule
 * (store_sqlite_int.h): the writer applies queued store_put_auth records
 * (st->wdb, writer thread); reads go through st->rdb under st->rlock (the
 * query worker, main at start-up); the store_admin_* calls use a connection
 * of their own, st->adb, on the caller's thread (the CLI process). */
#include "store_sqlite_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "vclock.h"

#define TAG STORE_TAG
#define ADMIN_BUSY_TIMEOUT_MS 5000
#define AUDIT_PRUNE_CHUNK 5000

/* Binds ?1.. from fmt: 't' text (NULL binds NULL, "" too for optional
 * columns when fmt says 'o'), 'i' int64. Returns an SQLite code. */
static int store_auth__bind(sqlite3_stmt *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = SQLITE_OK;
    for (int i = 0; fmt[i] && rc == SQLITE_OK; i++) {
        if (fmt[i] == 'i') {
            rc = sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
            continue;
        }
        const char *v = va_arg(ap, const char *);
        if (!v || (fmt[i] == 'o' && !*v))
            rc = sqlite3_bind_null(s, i + 1);
        else
            rc = sqlite3_bind_text(s, i + 1, v, -1, SQLITE_TRANSIENT);
    }
    va_end(ap);
    return rc;
}

static void store_auth__text(char *dst, size_t n, sqlite3_stmt *s, int col)
{
    const unsigned char *t = sqlite3_column_text(s, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

/* ---- the writer's statements ---- */

static const char *const store_auth__write_sql[STORE_AUTH_AUDIT + 1] = {
    [STORE_AUTH_USER_ADD] = "INSERT INTO users(name, role, pwhash, created_at) VALUES(?1, ?2, ?3, ?4)",
    [STORE_AUTH_USER_UPDATE] = "UPDATE users SET role = coalesce(?2, role), pwhash = coalesce(?3, pwhash) "
                               "WHERE name = ?1",
    [STORE_AUTH_USER_DEL] = "DELETE FROM users WHERE name = ?1",
    [STORE_AUTH_TOKEN_ADD] = "INSERT INTO tokens(id, key, name, role, created_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [STORE_AUTH_TOKEN_DEL] = "DELETE FROM tokens WHERE id = ?1",
    [STORE_AUTH_TOKEN_USED] = "UPDATE tokens SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE id = ?1",
    [STORE_AUTH_SESSION_ADD] = "INSERT OR REPLACE INTO sessions(key, user, csrf, created_at, last_used_at, "
                               "expires_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [STORE_AUTH_SESSION_DEL] = "DELETE FROM sessions WHERE key = ?1",
    [STORE_AUTH_SESSION_USED] = "UPDATE sessions SET last_used_at = max(last_used_at, ?2) WHERE key = ?1",
    [STORE_AUTH_AUDIT] = "INSERT INTO audit(t, user, address, action, target, outcome, detail) "
                         "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

/* Binds w's values for its statement. */
static int store_auth__bind_write(sqlite3_stmt *s, const store_auth_write *w)
{
    const store_user *u = &w->v.u;
    const store_token *t = &w->v.t;
    const store_session *x = &w->v.s;
    const store_audit *a = &w->v.a;
    switch (w->op) {
    case STORE_AUTH_USER_ADD: return store_auth__bind(s, "ttti", u->name, u->role, u->pwhash, u->created_ms);
    case STORE_AUTH_USER_UPDATE: return store_auth__bind(s, "too", u->name, u->role, u->pwhash);
    case STORE_AUTH_USER_DEL: return store_auth__bind(s, "t", u->name);
    case STORE_AUTH_TOKEN_ADD:
        return store_auth__bind(s, "tttti", t->id, t->key, t->name, t->role, t->created_ms);
    case STORE_AUTH_TOKEN_DEL: return store_auth__bind(s, "t", t->id);
    case STORE_AUTH_TOKEN_USED: return store_auth__bind(s, "ti", t->id, t->last_used_ms);
    case STORE_AUTH_SESSION_ADD:
        return store_auth__bind(s, "tttiii", x->key, x->user, x->csrf, x->created_ms, x->last_used_ms,
                                x->expires_ms);
    case STORE_AUTH_SESSION_DEL: return store_auth__bind(s, "t", x->key);
    case STORE_AUTH_SESSION_USED: return store_auth__bind(s, "ti", x->key, x->last_used_ms);
    case STORE_AUTH_AUDIT:
        return store_auth__bind(s, "itotooo", a->t_ms, a->user, a->address, a->action, a->target,
                                a->outcome, a->detail);
    }
    return SQLITE_MISUSE;
}

/* Runs w on db with the statement *cache (prepared on first use). */
static int store_auth__apply(sqlite3 *db, sqlite3_stmt **cache, const store_auth_write *w)
{
    if (!*cache && sqlite3_prepare_v3(db, store_auth__write_sql[w->op], -1, SQLITE_PREPARE_PERSISTENT,
                                      cache, NULL) != SQLITE_OK)
        return sqlite3_errcode(db);
    int rc = store_auth__bind_write(*cache, w);
    if (rc != SQLITE_OK) {
        sqlite3_reset(*cache);
        return rc;
    }
    rc = store_sqlite__exec_stmt(*cache);
    sqlite3_clear_bindings(*cache);
    return rc;
}

/* A user's sessions go with the user. */
static int store_auth__del_user_sessions(sqlite3 *db, const char *name)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "DELETE FROM sessions WHERE user = ?1", -1, &s, NULL) != SQLITE_OK)
        return sqlite3_errcode(db);
    int rc = store_auth__bind(s, "t", name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc;
}

int store_sqlite__write_auth(store_sqlite *st, const store_auth_write *w)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    if (w->op < STORE_AUTH_USER_ADD || w->op > STORE_AUTH_AUDIT)
        return SQLITE_MISUSE;
    int rc = store_auth__apply(st->wdb, &st->w_auth[w->op], w);
    if (rc == SQLITE_DONE && w->op == STORE_AUTH_USER_DEL)
        rc = store_auth__del_user_sessions(st->wdb, w->v.u.name);
    return rc;
}

int store_sqlite__prune_auth(store_sqlite *st, int64_t cutoff_ms, int64_t now_ms)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    if (!st->w_prune_audit &&
        (store_sqlite__prepare(st->wdb, "DELETE FROM audit WHERE rowid IN (SELECT rowid FROM audit "
                                        "WHERE t < ?1 LIMIT ?2)", &st->w_prune_audit, NULL, 0) != 0 ||
         store_sqlite__prepare(st->wdb, "DELETE FROM sessions WHERE expires_at < ?1",
                               &st->w_prune_sessions, NULL, 0) != 0))
        return sqlite3_errcode(st->wdb);
    int rc = store_auth__bind(st->w_prune_audit, "ii", cutoff_ms, (int64_t)AUDIT_PRUNE_CHUNK);
    if (rc == SQLITE_OK)
        rc = store_sqlite__exec_stmt(st->w_prune_audit);
    if (rc != SQLITE_DONE)
        return rc;
    rc = store_auth__bind(st->w_prune_sessions, "i", now_ms);
    return rc == SQLITE_OK ? store_sqlite__exec_stmt(st->w_prune_sessions) : rc;
}

void store_sqlite__auth_close(store_sqlite *st)
{
    for (size_t i = 0; i < sizeof st->w_auth / sizeof *st->w_auth; i++) {
        sqlite3_finalize(st->w_auth[i]);
        st->w_auth[i] = NULL;
    }
    sqlite3_finalize(st->w_prune_audit);
    sqlite3_finalize(st->w_prune_sessions);
    st->w_prune_audit = st->w_prune_sessions = NULL;
    if (st->adb && sqlite3_close(st->adb) != SQLITE_OK)
        LOG_E(TAG, "closing the admin connection: %s", sqlite3_errmsg(st->adb));
    st->adb = NULL;
}

/* ---- reads ---- */

/* Runs a SELECT on the read connection, handing each row to row(); grows
 * *out by esize per row. */

store_err store_sqlite__select(store_sqlite *st, const char *sql, store_sqlite__row_fn row, size_t esize,
                               void **out, size_t *n, const char *fmt, ...)
{
    if (!st || !out || !n)
        return STORE_EINVAL;
    *out = NULL;
    *n = 0;
    store_err ret = STORE_OK;
    size_t cap = 0;
    unsigned char *v = NULL;
    vmutex_lock(&st->rlock);
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(st->rdb, sql, -1, &s, NULL) != SQLITE_OK) {
        LOG_E(TAG, "read: %s", sqlite3_errmsg(st->rdb));
        vmutex_unlock(&st->rlock);
        return STORE_EIO;
    }
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        int rc = fmt[i] == 'i' ? sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t))
                               : sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        if (rc != SQLITE_OK)
            ret = STORE_EIO;
    }
    va_end(ap);
    int rc = SQLITE_DONE;
    while (ret == STORE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            unsigned char *nv = realloc(v, ncap * esize);
            if (!nv) {
                ret = STORE_ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        memset(v + *n * esize, 0, esize);
        row(s, v + *n * esize);
        (*n)++;
    }
    if (ret == STORE_OK && rc != SQLITE_DONE) {
        LOG_E(TAG, "read: %s", sqlite3_errmsg(st->rdb));
        ret = STORE_EIO;
    }
    sqlite3_finalize(s);
    vmutex_unlock(&st->rlock);
    if (ret != STORE_OK) {
        free(v);
        *n = 0;
        return ret;
    }
    *out = v;
    return STORE_OK;
}

static void store_auth__row_user(sqlite3_stmt *s, void *dst)
{
    store_user *u = dst;
    store_auth__text(u->name, sizeof u->name, s, 0);
    store_auth__text(u->role, sizeof u->role, s, 1);
    store_auth__text(u->pwhash, sizeof u->pwhash, s, 2);
    u->created_ms = sqlite3_column_int64(s, 3);
}

static void store_auth__row_token(sqlite3_stmt *s, void *dst)
{
    store_token *t = dst;
    store_auth__text(t->id, sizeof t->id, s, 0);
    store_auth__text(t->key, sizeof t->key, s, 1);
    store_auth__text(t->name, sizeof t->name, s, 2);
    store_auth__text(t->role, sizeof t->role, s, 3);
    t->created_ms = sqlite3_column_int64(s, 4);
    t->last_used_ms = sqlite3_column_int64(s, 5);
}

static void store_auth__row_session(sqlite3_stmt *s, void *dst)
{
    store_session *x = dst;
    store_auth__text(x->key, sizeof x->key, s, 0);
    store_auth__text(x->user, sizeof x->user, s, 1);
    store_auth__text(x->role, sizeof x->role, s, 2);
    store_auth__text(x->csrf, sizeof x->csrf, s, 3);
    x->created_ms = sqlite3_column_int64(s, 4);
    x->last_used_ms = sqlite3_column_int64(s, 5);
    x->expires_ms = sqlite3_column_int64(s, 6);
}

static void store_auth__row_audit(sqlite3_stmt *s, void *dst)
{
    store_audit *a = dst;
    a->t_ms = sqlite3_column_int64(s, 0);
    store_auth__text(a->user, sizeof a->user, s, 1);
    store_auth__text(a->address, sizeof a->address, s, 2);
    store_auth__text(a->action, sizeof a->action, s, 3);
    store_auth__text(a->target, sizeof a->target, s, 4);
    store_auth__text(a->outcome, sizeof a->outcome, s, 5);
    store_auth__text(a->detail, sizeof a->detail, s, 6);
}

store_err store_sqlite_get_user(void *impl, const char *name, store_user *out)
{
    store_sqlite *st = impl;
    store_user *v;
    size_t n;
    store_err e = store_sqlite__select(st, "SELECT name, role, pwhash, created_at FROM users WHERE name = ?1",
                                     store_auth__row_user, sizeof *v, (void **)&v, &n, "t", name);
    if (e != STORE_OK)
        return e;
    if (n)
        *out = v[0];
    free(v);
    return n ? STORE_OK : STORE_ENOTFOUND;
}

store_err store_sqlite_list_users(void *impl, store_user **out, size_t *n)
{
    store_sqlite *st = impl;
    return store_sqlite__select(st, "SELECT name, role, '', created_at FROM users ORDER BY name",
                              store_auth__row_user, sizeof **out, (void **)out, n, "");
}

store_err store_sqlite_list_tokens(void *impl, store_token **out, size_t *n)
{
    store_sqlite *st = impl;
    return store_sqlite__select(st, "SELECT id, key, name, role, created_at, coalesce(last_used_at, 0) "
                                  "FROM tokens ORDER BY created_at, id",
                              store_auth__row_token, sizeof **out, (void **)out, n, "");
}

store_err store_sqlite_list_sessions(void *impl, int64_t now_ms, store_session **out, size_t *n)
{
    store_sqlite *st = impl;
    return store_sqlite__select(st, "SELECT s.key, s.user, u.role, s.csrf, s.created_at, s.last_used_at, "
                                  "s.expires_at FROM sessions s JOIN users u ON u.name = s.user "
                                  "WHERE s.expires_at > ?1",
                              store_auth__row_session, sizeof **out, (void **)out, n, "i", now_ms);
}

store_err store_sqlite_query_audit(void *impl, int64_t from_ms, int64_t to_ms, const char *user,
                            size_t limit, store_audit **out, size_t *n)
{
    store_sqlite *st = impl;
    const char *cols = "SELECT t, user, address, action, target, outcome, detail FROM audit ";
    char sql[256];
    snprintf(sql, sizeof sql, "%s WHERE t BETWEEN ?1 AND ?2 %s ORDER BY t DESC, rowid DESC LIMIT ?3",
             cols, user ? "AND user = ?4" : "");
    if (user)
        return store_sqlite__select(st, sql, store_auth__row_audit, sizeof **out, (void **)out, n, "iiit",
                                  from_ms, to_ms, (int64_t)limit, user);
    return store_sqlite__select(st, sql, store_auth__row_audit, sizeof **out, (void **)out, n, "iii",
                              from_ms, to_ms, (int64_t)limit);
}

/* ---- administration (the CLI's own connection) ---- */

static store_err store_auth__admin_db(store_sqlite *st)
{
    if (st->adb)
        return STORE_OK;
    if (sqlite3_open_v2(st->path, &st->adb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(st->adb, ADMIN_BUSY_TIMEOUT_MS) != SQLITE_OK) {
        LOG_E(TAG, "%s: admin connection: %s", st->path, st->adb ? sqlite3_errmsg(st->adb) : "out of memory");
        return STORE_EIO;
    }
    return STORE_OK;
}

/* Applies one write now; changes: rows it touched (-1 on error). */
static store_err store_auth__admin(store_sqlite *st, const store_auth_write *w, int *changes)
{
    if (!st)
        return STORE_EINVAL;
    store_err e = store_auth__admin_db(st);
    if (e != STORE_OK)
        return e;
    sqlite3_stmt *s = NULL;
    int rc = store_auth__apply(st->adb, &s, w);
    int ch = sqlite3_changes(st->adb);
    /* A deleted user's sessions go; so do all sessions of a user whose
     * password the CLI changed (nobody's own session makes that change). */
    if (rc == SQLITE_DONE && ch > 0 &&
        (w->op == STORE_AUTH_USER_DEL || (w->op == STORE_AUTH_USER_UPDATE && w->v.u.pwhash[0])))
        rc = store_auth__del_user_sessions(st->adb, w->v.u.name);
    sqlite3_finalize(s);
    if (changes)
        *changes = ch;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return STORE_EEXIST;
    if (rc != SQLITE_DONE) {
        LOG_E(TAG, "%s: %s", st->path, sqlite3_errmsg(st->adb));
        return STORE_EIO;
    }
    return STORE_OK;
}

store_err store_sqlite_admin_user_add(void *impl, const store_user *u)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_USER_ADD, .v.u = *u};
    return store_auth__admin(st, &w, NULL);
}

store_err store_sqlite_admin_user_update(void *impl, const char *name, const char *role, const char *pwhash)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_USER_UPDATE};
    snprintf(w.v.u.name, sizeof w.v.u.name, "%s", name);
    snprintf(w.v.u.role, sizeof w.v.u.role, "%s", role ? role : "");
    snprintf(w.v.u.pwhash, sizeof w.v.u.pwhash, "%s", pwhash ? pwhash : "");
    int ch = 0;
    store_err e = store_auth__admin(st, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_sqlite_admin_user_del(void *impl, const char *name)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_USER_DEL};
    snprintf(w.v.u.name, sizeof w.v.u.name, "%s", name);
    int ch = 0;
    store_err e = store_auth__admin(st, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_sqlite_admin_token_add(void *impl, const store_token *t)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_TOKEN_ADD, .v.t = *t};
    return store_auth__admin(st, &w, NULL);
}

store_err store_sqlite_admin_token_del(void *impl, const char *id)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_TOKEN_DEL};
    snprintf(w.v.t.id, sizeof w.v.t.id, "%s", id);
    int ch = 0;
    store_err e = store_auth__admin(st, &w, &ch);
    return e == STORE_OK && ch == 0 ? STORE_ENOTFOUND : e;
}

store_err store_sqlite_admin_audit(void *impl, const store_audit *a)
{
    store_sqlite *st = impl;
    store_auth_write w = {.op = STORE_AUTH_AUDIT, .v.a = *a};
    return store_auth__admin(st, &w, NULL);
}
