/* Unit tests for the store's alarm tables (server/store_sqlite_alarm.c)
 * through the store interface, on a real SQLite file: events keep each
 * alarm's current state, open alarms come back for the restore, the history
 * query, per-device settings (all rows or none), and the query worker's
 * JSON answers (query_run). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alarm.h"
#include "pg_cluster.h"
#include "query.h"
#include "sbuf.h"
#include "store.h"

#define T0 INT64_C(1800000000000)

/* On PostgreSQL (VIGIL_TEST_PG_URL, CTest's test_store_alarm_pg): a fresh
 * database per open, its name in path. */
static pg_testdb pgdb;

static store *open_store(char *path, size_t cap)
{
    const char *where = path;
    if (pg_cluster_url()) {
        assert_int_equal(pg_cluster_create_db(&pgdb, "va"), 0);
        snprintf(path, 64, "%s", pgdb.name);
        where = pgdb.url;
    } else {
        snprintf(path, 64, "/tmp/vigil-test-store-alarm-%d.db", (int)getpid());
        unlink(path);
    }
    store_options o = {.path = where, .queue_capacity = cap};
    store *st = NULL;
    char err[256];
    assert_int_equal(store_open(&o, &st, err, sizeof err), STORE_OK);
    return st;
}

static void close_store(store *st, const char *path)
{
    store_close(st);
    if (pg_cluster_url()) {
        assert_int_equal(pg_cluster_drop_db(&pgdb), 0);
        return;
    }
    char p[96];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

static alarm_event event(alarm_event_kind k, uint64_t id, alarm_condition c, alarm_state s, int64_t at)
{
    alarm_event e;
    memset(&e, 0, sizeof e);
    e.kind = k;
    e.at = at;
    e.alarm.alarm_id = id;
    strcpy(e.alarm.device_id, "D1");
    e.alarm.condition = c;
    e.alarm.priority = ALARM_PRIO_HIGH;
    e.alarm.state = s;
    e.alarm.has_value = 1;
    e.alarm.value = 80;
    e.alarm.limit = 85;
    e.alarm.started_at = at;
    return e;
}

static void test_events_open_alarms_and_history(void **state)
{
    (void)state;
    char path[64];
    store *st = open_store(path, 1000);
    alarm_event a = event(ALARM_EV_RAISED, 10, ALARM_SPO2_DESAT, ALARM_ACTIVE, T0);
    assert_int_equal(store_put_alarm(st, &a), STORE_OK);
    a.kind = ALARM_EV_UPDATED;
    a.alarm.state = ALARM_LATCHED;
    a.alarm.cleared_at = T0 + 9000;
    a.alarm.escalation = 2;
    assert_int_equal(store_put_alarm(st, &a), STORE_OK);
    alarm_event b = event(ALARM_EV_RAISED, 11, ALARM_HR_HIGH, ALARM_ACTIVE, T0 + 1000);
    store_put_alarm(st, &b);
    b.kind = ALARM_EV_ACKNOWLEDGED;
    b.alarm.state = ALARM_CLEARED;
    strcpy(b.alarm.acked_by, "nurse");
    b.alarm.acked_at = T0 + 2000;
    strcpy(b.user, "nurse");
    store_put_alarm(st, &b);
    alarm_event bad = a;
    strcpy(bad.alarm.device_id, "bad id");
    assert_int_equal(store_put_alarm(st, &bad), STORE_EINVAL);
    assert_int_equal(store_sync(st, 5000), STORE_OK);

    alarm_rec *v;
    size_t n;
    assert_int_equal(store_load_open_alarms(st, &v, &n), STORE_OK);
    assert_int_equal(n, 1); /* the cleared one is history only */
    assert_true(v[0].alarm_id == 10);
    assert_int_equal(v[0].state, ALARM_LATCHED);
    assert_int_equal(v[0].condition, ALARM_SPO2_DESAT);
    assert_int_equal(v[0].priority, ALARM_PRIO_HIGH);
    assert_int_equal(v[0].escalation, 2);
    assert_true(v[0].cleared_at == T0 + 9000 && v[0].started_at == T0);
    assert_true(v[0].has_value && v[0].value == 80 && v[0].limit == 85);
    free(v);
    assert_int_equal(store_query_alarms(st, "D1", T0, T0 + 5000, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 2);
    assert_true(v[0].alarm_id == 11); /* newest first */
    assert_string_equal(v[0].acked_by, "nurse");
    free(v);
    assert_int_equal(store_query_alarms(st, "D1", T0 + 500, T0 + 5000, 10, &v, &n), STORE_OK);
    assert_int_equal(n, 1);
    free(v);
    /* the query worker's answer */
    query_job j = {.kind = QUERY_ALARMS, .from = 0, .to = T0 * 2, .limit = 100};
    strcpy(j.dev, "D1");
    sbuf o;
    sbuf_init(&o, 0);
    assert_int_equal(query_run(st, NULL, &j, &o), 200);
    assert_non_null(strstr(sbuf_data(&o), "\"alarms\":[{\"alarm_id\":11,"));
    assert_non_null(strstr(sbuf_data(&o), "\"state\":\"latched\""));
    sbuf_free(&o);
    close_store(st, path);
}

static void test_settings_rows_all_or_none(void **state)
{
    (void)state;
    char path[64];
    store *st = open_store(path, 1000);
    alarm_settings s, got;
    alarm_settings_default(&s);
    assert_int_equal(store_get_alarm_settings(st, "D1", &got), STORE_ENOTFOUND);
    assert_memory_equal(&got, &s, sizeof s);
    s.cond[ALARM_SPO2_LOW].limit = 95;
    s.cond[ALARM_SPO2_LOW].onset_ms = 0;
    s.cond[ALARM_NO_SIGNAL].enabled = 0;
    s.escalation_ms = 30000;
    assert_int_equal(store_put_alarm_settings(st, "D1", &s, "clara", T0), STORE_OK);
    assert_int_equal(store_sync(st, 5000), STORE_OK);
    assert_int_equal(store_get_alarm_settings(st, "D1", &got), STORE_OK);
    assert_memory_equal(&got, &s, sizeof s);
    query_job j = {.kind = QUERY_ALARM_SETTINGS};
    strcpy(j.dev, "D1");
    sbuf o;
    sbuf_init(&o, 0);
    assert_int_equal(query_run(st, NULL, &j, &o), 200);
    alarm_settings back;
    char err[160];
    assert_int_equal(alarm_settings_parse(sbuf_data(&o), o.len, &got, &back, err, sizeof err), ALARM_OK);
    assert_memory_equal(&back, &s, sizeof s);
    sbuf_free(&o);
    close_store(st, path);

    /* A queue without room for every row takes none of them. */
    st = open_store(path, ALARM_COND_COUNT);
    assert_int_equal(store_put_alarm_settings(st, "D2", &s, "clara", T0), STORE_EFULL);
    assert_int_equal(store_sync(st, 5000), STORE_OK);
    assert_int_equal(store_get_alarm_settings(st, "D2", &got), STORE_ENOTFOUND);
    close_store(st, path);
}

static void count_cb(void *ctx, const char *id, const alarm_settings *s)
{
    int *n = ctx;
    assert_string_equal(id, *n == 0 ? "A" : "B");
    assert_true(s->cond[ALARM_HR_HIGH].limit == (*n == 0 ? 130 : 150));
    (*n)++;
}

static void test_settings_load_all(void **state)
{
    (void)state;
    char path[64];
    store *st = open_store(path, 1000);
    alarm_settings s;
    alarm_settings_default(&s);
    s.cond[ALARM_HR_HIGH].limit = 150;
    store_put_alarm_settings(st, "B", &s, NULL, T0);
    s.cond[ALARM_HR_HIGH].limit = 130;
    store_put_alarm_settings(st, "A", &s, NULL, T0);
    assert_int_equal(store_sync(st, 5000), STORE_OK);
    int n = 0;
    assert_int_equal(store_load_alarm_settings(st, count_cb, &n), STORE_OK);
    assert_int_equal(n, 2);
    close_store(st, path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_open_alarms_and_history),
        cmocka_unit_test(test_settings_rows_all_or_none),
        cmocka_unit_test(test_settings_load_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
