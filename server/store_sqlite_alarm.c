/* store_sqlite_alarm — the alarm tables of the SQLite store
 * (store_sqlite_int.h): the writer applies queued store_put_alarm records
 * (an upsert of the alarm's row and one history row), and the reads serve
 * start-up (open alarms, restored into the engine) and the REST history. */
#include "store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define TAG "store"

#define ALARM_COLS "alarm_id, device_id, condition, priority, state, value, lim, started_at, " \
                   "cleared_at, acked_by, acked_at, silenced_until, escalation, retrospective, news2"

static int store_alarm__prep(sqlite3 *db, sqlite3_stmt **s, const char *sql)
{
    if (*s)
        return SQLITE_OK;
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
}

static void store_alarm__opt_i(sqlite3_stmt *s, int i, int64_t v)
{
    if (v > 0)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

/* Text, or NULL when empty (a missing user). */
static void store_alarm__opt_t(sqlite3_stmt *s, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(s, i);
}

int store_sqlite__write_alarm(store_sqlite *st, const alarm_event *ev)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    const alarm_rec *a = &ev->alarm;
    int rc = store_alarm__prep(st->wdb, &st->w_alarm,
                               "INSERT OR REPLACE INTO alarms(" ALARM_COLS ", updated_at) VALUES"
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
    if (rc == SQLITE_OK)
        rc = store_alarm__prep(st->wdb, &st->w_alarm_event,
                               "INSERT INTO alarm_events(alarm_id, device_id, t, kind, user, state, priority) "
                               "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (rc != SQLITE_OK)
        return sqlite3_errcode(st->wdb);
    sqlite3_stmt *s = st->w_alarm;
    sqlite3_bind_int64(s, 1, (int64_t)a->alarm_id);
    sqlite3_bind_text(s, 2, a->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, alarm_condition_name(a->condition), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, alarm_priority_name(a->priority), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 5, alarm_state_name(a->state), -1, SQLITE_STATIC);
    if (a->has_value)
        sqlite3_bind_double(s, 6, a->value);
    else
        sqlite3_bind_null(s, 6);
    sqlite3_bind_double(s, 7, a->limit);
    store_alarm__opt_i(s, 8, a->started_at);
    store_alarm__opt_i(s, 9, a->cleared_at);
    store_alarm__opt_t(s, 10, a->acked_at > 0 ? a->acked_by : NULL);
    store_alarm__opt_i(s, 11, a->acked_at);
    store_alarm__opt_i(s, 12, a->silenced_until);
    sqlite3_bind_int64(s, 13, a->escalation);
    sqlite3_bind_int64(s, 14, a->retrospective);
    sqlite3_bind_int64(s, 15, a->news2_score);
    sqlite3_bind_int64(s, 16, ev->at);
    rc = store_sqlite__exec_stmt(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE)
        return rc;
    s = st->w_alarm_event;
    sqlite3_bind_int64(s, 1, (int64_t)a->alarm_id);
    sqlite3_bind_text(s, 2, a->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, ev->at);
    sqlite3_bind_text(s, 4, alarm_event_name(ev->kind), -1, SQLITE_STATIC);
    store_alarm__opt_t(s, 5, ev->user);
    sqlite3_bind_text(s, 6, alarm_state_name(a->state), -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, alarm_priority_name(a->priority), -1, SQLITE_STATIC);
    rc = store_sqlite__exec_stmt(s);
    sqlite3_clear_bindings(s);
    return rc;
}

void store_sqlite__alarm_close(store_sqlite *st)
{
    sqlite3_finalize(st->w_alarm);
    sqlite3_finalize(st->w_alarm_event);
    sqlite3_finalize(st->w_alarm_setting);
    st->w_alarm = st->w_alarm_event = st->w_alarm_setting = NULL;
}

static void store_alarm__row(sqlite3_stmt *s, void *dst)
{
    alarm_rec *a = dst;
    a->alarm_id = (uint64_t)sqlite3_column_int64(s, 0);
    const unsigned char *t = sqlite3_column_text(s, 1);
    snprintf(a->device_id, sizeof a->device_id, "%s", t ? (const char *)t : "");
    alarm_condition c = ALARM_SPO2_LOW;
    alarm_condition_from_name((const char *)sqlite3_column_text(s, 2), &c);
    a->condition = c;
    alarm_priority p = ALARM_PRIO_LOW;
    alarm_priority_from_name((const char *)sqlite3_column_text(s, 3), &p);
    a->priority = p;
    alarm_state st = ALARM_CLEARED;
    alarm_state_from_name((const char *)sqlite3_column_text(s, 4), &st);
    a->state = st;
    a->has_value = sqlite3_column_type(s, 5) != SQLITE_NULL;
    a->value = sqlite3_column_double(s, 5);
    a->limit = sqlite3_column_double(s, 6);
    a->started_at = sqlite3_column_int64(s, 7);
    a->cleared_at = sqlite3_column_int64(s, 8);
    t = sqlite3_column_text(s, 9);
    snprintf(a->acked_by, sizeof a->acked_by, "%s", t ? (const char *)t : "");
    a->acked_at = sqlite3_column_int64(s, 10);
    a->silenced_until = sqlite3_column_int64(s, 11);
    a->escalation = (uint32_t)sqlite3_column_int64(s, 12);
    a->retrospective = sqlite3_column_int(s, 13) != 0;
    a->news2_score = sqlite3_column_int(s, 14);
}

store_err store_sqlite_load_open_alarms(void *impl, alarm_rec **out, size_t *n)
{
    store_sqlite *st = impl;
    return store_sqlite__select(st, "SELECT " ALARM_COLS " FROM alarms WHERE state <> 'cleared' ORDER BY alarm_id",
                                store_alarm__row, sizeof **out, (void **)out, n, "");
}

store_err store_sqlite_query_alarms(void *impl, const char *device_id, int64_t from_ms, int64_t to_ms,
                             size_t limit, alarm_rec **out, size_t *n)
{
    store_sqlite *st = impl;
    if (!device_id)
        return STORE_EINVAL;
    return store_sqlite__select(st, "SELECT " ALARM_COLS " FROM alarms WHERE device_id = ?1 AND "
                                    "started_at BETWEEN ?2 AND ?3 ORDER BY started_at DESC, alarm_id DESC LIMIT ?4",
                                store_alarm__row, sizeof **out, (void **)out, n, "tiii", device_id,
                                from_ms, to_ms, (int64_t)limit);
}

/* ---- per-device settings ---- */

#define SETTING_COLS "device_id, condition, enabled, latching, lim, lim_high, hysteresis, onset_ms, " \
                     "onset_high_ms, clear_ms"

int store_sqlite__write_alarm_setting(store_sqlite *st, const store_alarm_setting_rec *r)
{
    THREAD_ASSERT_OWNER(&st->writer_owner);
    if (store_alarm__prep(st->wdb, &st->w_alarm_setting,
                          "INSERT OR REPLACE INTO alarm_settings(" SETTING_COLS ", updated_at, updated_by) "
                          "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)") != SQLITE_OK)
        return sqlite3_errcode(st->wdb);
    sqlite3_stmt *s = st->w_alarm_setting;
    const alarm_cond_settings *c = &r->cs;
    sqlite3_bind_text(s, 1, r->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->cond < 0 ? "escalation" : alarm_condition_name((alarm_condition)r->cond), -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(s, 3, c->enabled);
    sqlite3_bind_int(s, 4, c->latching);
    sqlite3_bind_double(s, 5, c->limit);
    sqlite3_bind_double(s, 6, c->limit_high);
    sqlite3_bind_double(s, 7, c->hysteresis);
    sqlite3_bind_int64(s, 8, c->onset_ms);
    sqlite3_bind_int64(s, 9, c->onset_high_ms);
    sqlite3_bind_int64(s, 10, c->clear_ms);
    sqlite3_bind_int64(s, 11, r->at_ms);
    store_alarm__opt_t(s, 12, r->user);
    int rc = store_sqlite__exec_stmt(s);
    sqlite3_clear_bindings(s);
    return rc;
}

static void store_alarm__row_setting(sqlite3_stmt *s, void *dst)
{
    store_alarm_setting_row *r = dst;
    const unsigned char *t = sqlite3_column_text(s, 0);
    snprintf(r->device_id, sizeof r->device_id, "%s", t ? (const char *)t : "");
    r->cond = store_alarm_setting_cond((const char *)sqlite3_column_text(s, 1));
    r->cs.enabled = sqlite3_column_int(s, 2);
    r->cs.latching = sqlite3_column_int(s, 3);
    r->cs.limit = sqlite3_column_double(s, 4);
    r->cs.limit_high = sqlite3_column_double(s, 5);
    r->cs.hysteresis = sqlite3_column_double(s, 6);
    r->cs.onset_ms = sqlite3_column_int64(s, 7);
    r->cs.onset_high_ms = sqlite3_column_int64(s, 8);
    r->cs.clear_ms = sqlite3_column_int64(s, 9);
}

store_err store_sqlite_get_alarm_settings(void *impl, const char *device_id, alarm_settings *out)
{
    store_sqlite *st = impl;
    alarm_settings_default(out);
    store_alarm_setting_row *v = NULL;
    size_t n = 0;
    store_err e = store_sqlite__select(st, "SELECT " SETTING_COLS " FROM alarm_settings WHERE device_id = ?1",
                                       store_alarm__row_setting, sizeof *v, (void **)&v, &n, "t", device_id);
    if (e != STORE_OK)
        return e;
    e = store_alarm_settings_of(v, n, out);
    free(v);
    return e;
}

store_err store_sqlite_load_alarm_settings(void *impl,
                                    void (*cb)(void *ctx, const char *device_id, const alarm_settings *s),
                                    void *ctx)
{
    store_sqlite *st = impl;
    store_alarm_setting_row *v = NULL;
    size_t n = 0;
    store_err e = store_sqlite__select(st, "SELECT " SETTING_COLS " FROM alarm_settings ORDER BY device_id",
                                       store_alarm__row_setting, sizeof *v, (void **)&v, &n, "");
    if (e != STORE_OK)
        return e;
    store_alarm_settings_each(v, n, cb, ctx);
    free(v);
    return STORE_OK;
}
