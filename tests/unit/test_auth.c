/* Unit tests for server/auth.c: password hash/verify, secrets and keys,
 * Cookie / Authorization parsing (hostile inputs too), CSRF compare, roles
 * and the route table, body parsing, the throttle's timing, the session
 * and token table (expiry, tombstones, merge). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

static void test_password_hash_verify(void **state)
{
    (void)state;
    char h[AUTH_PWHASH_MAX];
    assert_int_equal(auth_password_hash("correct horse", 13, h), AUTH_OK);
    assert_non_null(strstr(h, "$argon2id$"));
    assert_null(strstr(h, "correct horse"));
    assert_int_equal(auth_password_verify(h, "correct horse", 13), 1);
    assert_int_equal(auth_password_verify(h, "correct hors", 12), 0);
    assert_int_equal(auth_password_verify(h, "correct horsf", 13), 0);
    assert_int_equal(auth_password_verify("garbage", "correct horse", 13), 0);
    char h2[AUTH_PWHASH_MAX];
    assert_int_equal(auth_password_hash("correct horse", 13, h2), AUTH_OK);
    assert_string_not_equal(h, h2); /* salted */
}

static void test_names(void **state)
{
    (void)state;
    assert_true(auth_username_valid("alice", 5));
    assert_true(auth_username_valid("a.b-c_d@e", 9));
    assert_false(auth_username_valid("", 0));
    assert_false(auth_username_valid(".", 1));
    assert_false(auth_username_valid("..", 2));
    assert_false(auth_username_valid("a b", 3));
    assert_false(auth_username_valid("a/b", 3));
    char big[66];
    memset(big, 'a', 65);
    big[65] = 0;
    assert_false(auth_username_valid(big, 65));
    assert_true(auth_username_valid(big, 64));
    assert_true(auth_password_valid("12345678", 8));
    assert_false(auth_password_valid("1234567", 7));
    assert_false(auth_password_valid("1234\n5678", 9));
    assert_false(auth_password_valid("1234\0" "5678", 9));
    auth_role r;
    assert_int_equal(auth_role_parse("technician", &r), AUTH_OK);
    assert_int_equal(r, AUTH_ROLE_TECHNICIAN);
    assert_int_equal(auth_role_parse("none", &r), AUTH_EINVAL);
    assert_int_equal(auth_role_parse("Admin", &r), AUTH_EINVAL);
    assert_string_equal(auth_role_name(AUTH_ROLE_ADMIN), "admin");
}

static void test_secrets_and_keys(void **state)
{
    (void)state;
    char t1[AUTH_TOKEN_LEN + 1], t2[AUTH_TOKEN_LEN + 1], s[AUTH_TOKEN_LEN + 1];
    auth_secret_new(1, t1, sizeof t1);
    auth_secret_new(1, t2, sizeof t2);
    auth_secret_new(0, s, sizeof s);
    assert_int_equal(strlen(t1), AUTH_TOKEN_LEN);
    assert_int_equal(strncmp(t1, "vgt_", 4), 0);
    assert_string_not_equal(t1, t2);
    assert_int_equal(strlen(s), AUTH_SECRET_B64);
    assert_true(auth_secret_valid(t1, strlen(t1), 1));
    assert_false(auth_secret_valid(t1, strlen(t1), 0));
    assert_true(auth_secret_valid(s, strlen(s), 0));
    assert_false(auth_secret_valid(s, strlen(s) - 1, 0));
    char bad[AUTH_SECRET_B64 + 1];
    memcpy(bad, s, sizeof bad);
    bad[3] = '+';
    assert_false(auth_secret_valid(bad, strlen(bad), 0));
    char k1[AUTH_KEY_HEX + 1], k2[AUTH_KEY_HEX + 1];
    auth_key_of(t1, strlen(t1), k1);
    auth_key_of(t1, strlen(t1), k2);
    assert_string_equal(k1, k2);
    assert_int_equal(strlen(k1), AUTH_KEY_HEX);
    auth_key_of(t2, strlen(t2), k2);
    assert_string_not_equal(k1, k2);
    assert_null(strstr(k1, t1 + 4));
    char id[AUTH_TOKEN_ID_LEN + 1];
    auth_token_id_new(id);
    assert_int_equal(strlen(id), AUTH_TOKEN_ID_LEN);
}

static void test_cookie_parse(void **state)
{
    (void)state;
    const char *v;
    size_t n;
    const char *h = "theme=dark; vigil_session=abc_DEF-1;other=x";
    assert_int_equal(auth_cookie_find(h, strlen(h), "vigil_session", &v, &n), 1);
    assert_int_equal(n, 9);
    assert_memory_equal(v, "abc_DEF-1", 9);
    h = "vigil_session=xyz";
    assert_int_equal(auth_cookie_find(h, strlen(h), "vigil_session", &v, &n), 1);
    assert_int_equal(n, 3);
    h = "xvigil_session=1; vigil_sessionx=2; vigil_session";
    assert_int_equal(auth_cookie_find(h, strlen(h), "vigil_session", &v, &n), 0);
    h = ";;;   ;";
    assert_int_equal(auth_cookie_find(h, strlen(h), "vigil_session", &v, &n), 0);
    assert_int_equal(auth_cookie_find("", 0, "vigil_session", &v, &n), 0);
    h = "vigil_session=";
    assert_int_equal(auth_cookie_find(h, strlen(h), "vigil_session", &v, &n), 0);
    /* The header length bounds the scan, not a NUL. */
    h = "vigil_session=abc";
    assert_int_equal(auth_cookie_find(h, 10, "vigil_session", &v, &n), 0);
}

static void test_bearer_parse(void **state)
{
    (void)state;
    const char *t;
    size_t n;
    const char *h = "Bearer vgt_abc";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), 1);
    assert_int_equal(n, 7);
    assert_memory_equal(t, "vgt_abc", 7);
    h = "bearer   vgt_abc  ";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), 1);
    assert_int_equal(n, 7);
    h = "Basic dXNlcjpwYXNz";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), 0);
    h = "Bearer";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), -1);
    h = "Bearer    ";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), -1);
    h = "Bearer a b";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), -1);
    h = "Bearer a\"b";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), -1);
    h = "Bearerx abc";
    assert_int_equal(auth_bearer_parse(h, strlen(h), &t, &n), 0);
    assert_int_equal(auth_bearer_parse("", 0, &t, &n), 0);
}

static void test_csrf(void **state)
{
    (void)state;
    assert_int_equal(auth_csrf_equal("abcdef", "abcdef", 6), 1);
    assert_int_equal(auth_csrf_equal("abcdef", "abcdeg", 6), 0);
    assert_int_equal(auth_csrf_equal("abcdef", "abcde", 5), 0);
    assert_int_equal(auth_csrf_equal("abcdef", "abcdefg", 7), 0);
    assert_int_equal(auth_csrf_equal("abcdef", NULL, 0), 0);
    assert_int_equal(auth_csrf_equal("", "", 0), 0); /* no csrf value: never equal */
}

static void test_route_roles(void **state)
{
    (void)state;
    assert_int_equal(auth_route_role(AUTH_GET, "/healthz"), AUTH_ROLE_NONE);
    assert_int_equal(auth_route_role(AUTH_GET, "/metrics"), AUTH_ROLE_NONE);
    assert_int_equal(auth_route_role(AUTH_GET, "/index.html"), AUTH_ROLE_NONE);
    assert_int_equal(auth_route_role(AUTH_GET, "/apix"), AUTH_ROLE_NONE);
    assert_int_equal(auth_route_role(AUTH_POST, "/api/session"), AUTH_ROLE_NONE);
    assert_int_equal(auth_route_role(AUTH_GET, "/ws"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_route_role(AUTH_GET, "/api"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_route_role(AUTH_GET, "/api/devices"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_route_role(AUTH_GET, "/api/devices/X/readings"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_route_role(AUTH_POST, "/api/devices/X/commands"), AUTH_ROLE_CLINICIAN);
    assert_int_equal(auth_route_role(AUTH_PUT, "/api/devices/X/config"), AUTH_ROLE_TECHNICIAN);
    assert_int_equal(auth_route_role(AUTH_GET, "/api/users"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_route_role(AUTH_DELETE, "/api/users/bob"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_route_role(AUTH_POST, "/api/tokens"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_route_role(AUTH_GET, "/api/audit"), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_route_role(AUTH_GET, "/api/usersx"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_command_role("ping"), AUTH_ROLE_CLINICIAN);
    assert_int_equal(auth_command_role("identify"), AUTH_ROLE_CLINICIAN);
    assert_int_equal(auth_command_role("reboot"), AUTH_ROLE_TECHNICIAN);
    assert_int_equal(auth_command_role(""), AUTH_ROLE_TECHNICIAN);
    char cmd[32];
    auth_command_name("{\"cmd\":\"reboot\"}", 16, cmd, sizeof cmd);
    assert_string_equal(cmd, "reboot");
    auth_command_name("{\"cmd\":5}", 9, cmd, sizeof cmd);
    assert_string_equal(cmd, "");
    auth_command_name("{not json", 9, cmd, sizeof cmd);
    assert_string_equal(cmd, "");
}

static void test_parse_fields(void **state)
{
    (void)state;
    auth_fields f;
    char err[128];
    const char *b = "{\"username\":\"alice\",\"password\":\"s3cret pass\",\"role\":\"viewer\",\"x\":1}";
    assert_int_equal(auth_parse_fields(b, strlen(b), &f, err, sizeof err), AUTH_OK);
    assert_int_equal(f.has, AUTH_F_USERNAME | AUTH_F_PASSWORD | AUTH_F_ROLE);
    assert_string_equal(f.username, "alice");
    assert_int_equal(f.password_len, 11);
    assert_int_equal(f.role, AUTH_ROLE_VIEWER);
    auth_fields_wipe(&f);
    assert_int_equal(f.password[0], 0);
    const char *bad[] = {"", "[]", "{\"username\":5}", "{\"username\":\"a b\"}",
                         "{\"password\":\"short\"}", "{\"role\":\"root\"}", "{\"name\":\"..\"}",
                         "{\"password\":\"12345678\\n9\"}", "{\"username\":\"alice\"", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(auth_parse_fields(bad[i], strlen(bad[i]), &f, err, sizeof err), AUTH_EINVAL);
    assert_int_equal(auth_parse_fields("{}", 2, &f, err, sizeof err), AUTH_OK);
    assert_int_equal(f.has, 0);
}

static void test_throttle_timing(void **state)
{
    (void)state;
    auth_throttle th;
    assert_int_equal(auth_throttle_init(&th, 8), AUTH_OK);
    int64_t t = 1000000;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(auth_throttle_wait(&th, "bob", "10.0.0.1", t), 0);
        auth_throttle_fail(&th, "bob", "10.0.0.1", t);
    }
    assert_int_equal(auth_throttle_wait(&th, "bob", "10.0.0.1", t), 0);
    auth_throttle_fail(&th, "bob", "10.0.0.1", t); /* 5th: 1 s */
    assert_int_equal(auth_throttle_wait(&th, "bob", "10.0.0.2", t), 1000);
    assert_int_equal(auth_throttle_wait(&th, "eve", "10.0.0.1", t), 1000);
    assert_int_equal(auth_throttle_wait(&th, "eve", "10.0.0.2", t), 0);
    assert_int_equal(auth_throttle_wait(&th, "bob", "10.0.0.1", t + 1000), 0);
    t += 1000;
    auth_throttle_fail(&th, "bob", "10.0.0.1", t); /* 6th: 2 s */
    assert_int_equal(auth_throttle_wait(&th, "bob", NULL, t), 2000);
    t += 2000;
    auth_throttle_fail(&th, "bob", "10.0.0.1", t); /* 7th: 4 s */
    assert_int_equal(auth_throttle_wait(&th, "bob", NULL, t), 4000);
    for (int i = 0; i < 30; i++)
        auth_throttle_fail(&th, "bob", "10.0.0.1", t);
    assert_int_equal(auth_throttle_wait(&th, "bob", NULL, t), AUTH_THROTTLE_CAP_MS);
    /* Success forgets the username, not the address. */
    auth_throttle_ok(&th, "bob");
    assert_int_equal(auth_throttle_wait(&th, "bob", NULL, t), 0);
    assert_int_equal(auth_throttle_wait(&th, NULL, "10.0.0.1", t), AUTH_THROTTLE_CAP_MS);
    /* Bounded: many keys evict the oldest, the table never grows past 8. */
    for (int i = 0; i < 100; i++) {
        char u[16];
        snprintf(u, sizeof u, "u%d", i);
        auth_throttle_fail(&th, u, NULL, t + i);
    }
    assert_true(idtable_count(&th.t) <= 8);
    auth_throttle_free(&th);
}

static auth_entry mk(const char *secret, auth_kind k, const char *user, int64_t now)
{
    auth_entry e;
    memset(&e, 0, sizeof e);
    auth_key_of(secret, strlen(secret), e.key);
    e.kind = k;
    e.role = AUTH_ROLE_VIEWER;
    snprintf(e.user, sizeof e.user, "%s", user);
    snprintf(e.csrf, sizeof e.csrf, "csrf");
    e.created_ms = e.last_used_ms = now;
    e.expires_ms = k == AUTH_SESSION ? now + 100000 : 0;
    return e;
}

static void test_table_expiry_and_merge(void **state)
{
    (void)state;
    auth_table at;
    assert_int_equal(auth_table_init(&at, 16, 2000, 100000), AUTH_OK);
    int64_t t = 50000;
    auth_entry s1 = mk("s1", AUTH_SESSION, "alice", t), tk = mk("t1", AUTH_TOKEN, "ci", t);
    snprintf(tk.id, sizeof tk.id, "abc");
    assert_int_equal(auth_table_add(&at, &s1, t), AUTH_OK);
    assert_int_equal(auth_table_add(&at, &tk, t), AUTH_OK);
    int exp;
    auth_entry *e = auth_table_find(&at, s1.key, t + 1999, &exp);
    assert_non_null(e);
    e->last_used_ms = t + 1999; /* used: the idle clock restarts */
    assert_non_null(auth_table_find(&at, s1.key, t + 3998, &exp));
    assert_null(auth_table_find(&at, s1.key, t + 3999, &exp));
    assert_int_equal(exp, 1);
    assert_null(auth_table_find(&at, s1.key, t, &exp)); /* tombstoned */
    assert_non_null(auth_table_find(&at, tk.key, t + 10000000, &exp)); /* tokens do not idle out */
    assert_non_null(auth_table_find_token_id(&at, "abc"));
    /* Bounded. */
    auth_entry a = mk("a", AUTH_SESSION, "x", t), b = mk("b", AUTH_SESSION, "x", t),
               c = mk("c", AUTH_SESSION, "x", t);
    auth_table small;
    assert_int_equal(auth_table_init(&small, 1, 2000, 100000), AUTH_OK);
    assert_int_equal(auth_table_add(&small, &c, t), AUTH_OK);
    assert_int_equal(auth_table_add(&small, &a, t), AUTH_EFULL);
    auth_table_free(&small);
    assert_int_equal(auth_table_add(&at, &a, t), AUTH_OK);
    assert_int_equal(auth_table_add(&at, &b, t), AUTH_OK);
    assert_int_equal(auth_table_kill_user(&at, "x", t), 2);
    /* Merge within the grace: local adds stay, tombstones hide the snapshot's copy. */
    auth_entry snap[2] = {mk("a", AUTH_SESSION, "x", t), mk("d", AUTH_SESSION, "bob", t)};
    snap[1].role = AUTH_ROLE_ADMIN;
    assert_int_equal(auth_table_merge(&at, snap, 2, t + 100), 0);
    assert_null(auth_table_find(&at, snap[0].key, t + 100, &exp));
    e = auth_table_find(&at, snap[1].key, t + 100, &exp);
    assert_non_null(e);
    assert_int_equal(e->role, AUTH_ROLE_ADMIN);
    assert_non_null(auth_table_find(&at, tk.key, t + 100, &exp)); /* young local: kept */
    /* After the grace: whatever the snapshot lacks is gone (a CLI delete). */
    int64_t later = t + AUTH_LOCAL_GRACE_MS + 1;
    snap[1].last_used_ms = later; /* used elsewhere meanwhile */
    assert_int_equal(auth_table_merge(&at, &snap[1], 1, later), 0);
    assert_null(auth_table_find(&at, tk.key, later, &exp));
    assert_null(auth_table_find_token_id(&at, "abc"));
    assert_int_equal(auth_table_live_count(&at), 1);
    auth_table_set_user_role(&at, "bob", AUTH_ROLE_CLINICIAN);
    assert_int_equal(auth_table_find(&at, snap[1].key, later, &exp)->role, AUTH_ROLE_CLINICIAN);
    /* A session made here moments ago goes as soon as its user is gone
     * from the snapshot's user marks; with its user marked it stays. */
    auth_entry young = mk("y", AUTH_SESSION, "carol", later);
    young.last_used_ms = later;
    assert_int_equal(auth_table_add(&at, &young, later), AUTH_OK);
    auth_entry marks[2] = {snap[1], {.kind = AUTH_USER_MARK}};
    snprintf(marks[1].key, sizeof marks[1].key, "u:carol");
    assert_int_equal(auth_table_merge(&at, marks, 2, later + 1), 0);
    assert_non_null(auth_table_find(&at, young.key, later + 1, &exp));
    assert_int_equal(auth_table_merge(&at, marks, 1, later + 1), 0);
    assert_null(auth_table_find(&at, young.key, later + 1, &exp));
    assert_int_equal(auth_table_kill(&at, snap[1].key, later), AUTH_OK);
    assert_int_equal(auth_table_kill(&at, snap[1].key, later), AUTH_ENOTFOUND);
    auth_table_free(&at);
}

/* A password change ends the user's other sessions; the caller's stays,
 * other users' and tokens are untouched. */
static void test_kill_user_except(void **state)
{
    (void)state;
    auth_table at;
    assert_int_equal(auth_table_init(&at, 16, 2000, 100000), AUTH_OK);
    int64_t t = 1000;
    auth_entry a1 = mk("a1", AUTH_SESSION, "ada", t), a2 = mk("a2", AUTH_SESSION, "ada", t),
               a3 = mk("a3", AUTH_SESSION, "ada", t), b = mk("b", AUTH_SESSION, "bob", t),
               tk = mk("tk", AUTH_TOKEN, "ada", t);
    const auth_entry *all[] = {&a1, &a2, &a3, &b, &tk};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(auth_table_add(&at, all[i], t), AUTH_OK);
    int exp;
    assert_int_equal(auth_table_kill_user_except(&at, "ada", a2.key, t), 2);
    assert_null(auth_table_find(&at, a1.key, t, &exp));
    assert_non_null(auth_table_find(&at, a2.key, t, &exp));
    assert_null(auth_table_find(&at, a3.key, t, &exp));
    assert_non_null(auth_table_find(&at, b.key, t, &exp));
    assert_non_null(auth_table_find(&at, tk.key, t, &exp)); /* a token named like the user stays */
    assert_int_equal(auth_table_kill_user_except(&at, "ada", NULL, t), 1);
    assert_null(auth_table_find(&at, a2.key, t, &exp));
    auth_table_free(&at);
}

/* What an open WebSocket is checked against: its key still live with the
 * same role; an open stream keeps a session from idling out, never past
 * its absolute end; closing it restarts the idle clock. */
static void test_streams_and_grants(void **state)
{
    (void)state;
    auth_table at;
    assert_int_equal(auth_table_init(&at, 16, 2000, 100000), AUTH_OK);
    int64_t t = 1000;
    auth_entry s = mk("s", AUTH_SESSION, "vera", t), q = mk("q", AUTH_SESSION, "vera", t);
    s.expires_ms = t + 10000;
    assert_int_equal(auth_table_add(&at, &s, t), AUTH_OK);
    assert_int_equal(auth_table_add(&at, &q, t), AUTH_OK);
    int exp = 0;
    assert_non_null(auth_table_grants(&at, s.key, AUTH_ROLE_VIEWER, t, &exp));
    assert_null(auth_table_grants(&at, s.key, AUTH_ROLE_CLINICIAN, t, &exp)); /* up is a change too */
    assert_int_equal(exp, 0);
    auth_table_set_user_role(&at, "vera", AUTH_ROLE_ADMIN);
    assert_null(auth_table_grants(&at, s.key, AUTH_ROLE_VIEWER, t, &exp));
    assert_non_null(auth_table_grants(&at, s.key, AUTH_ROLE_ADMIN, t, &exp));
    /* Open streams: no idle expiry (twice, then closed once: still held). */
    auth_table_stream_open(&at, s.key);
    auth_table_stream_open(&at, s.key);
    assert_non_null(auth_table_find(&at, s.key, t + 5000, &exp));
    assert_null(auth_table_find(&at, q.key, t + 5000, &exp)); /* no stream: idled out */
    assert_int_equal(exp, 1);
    auth_table_stream_close(&at, s.key, t + 6000);
    assert_non_null(auth_table_find(&at, s.key, t + 7900, &exp));
    /* A merge (the 5 s refresh) keeps the count. */
    auth_entry snap = s;
    snap.role = AUTH_ROLE_ADMIN;
    snap.streams = 0;
    assert_int_equal(auth_table_merge(&at, &snap, 1, t + 7900), 0);
    assert_non_null(auth_table_find(&at, s.key, t + 9000, &exp));
    /* The absolute end holds with a stream open. */
    assert_null(auth_table_grants(&at, s.key, AUTH_ROLE_ADMIN, t + 10000, &exp));
    assert_int_equal(exp, 1);
    /* Last stream closed: the idle clock starts then. */
    auth_entry u = mk("u", AUTH_SESSION, "ada", t);
    assert_int_equal(auth_table_add(&at, &u, t), AUTH_OK);
    auth_table_stream_open(&at, u.key);
    assert_non_null(auth_table_touch(&at, u.key, t + 50000));
    assert_non_null(auth_table_find(&at, u.key, t + 51000, &exp));
    auth_table_stream_close(&at, u.key, t + 52000);
    assert_non_null(auth_table_find(&at, u.key, t + 53999, &exp));
    assert_null(auth_table_find(&at, u.key, t + 54000, &exp));
    /* Gone keys are ignored. */
    auth_table_stream_open(&at, u.key);
    auth_table_stream_close(&at, u.key, t);
    assert_null(auth_table_touch(&at, u.key, t));
    auth_table_free(&at);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_secrets_and_keys),
        cmocka_unit_test(test_cookie_parse),
        cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_route_roles),
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_throttle_timing),
        cmocka_unit_test(test_table_expiry_and_merge),
        cmocka_unit_test(test_kill_user_except),
        cmocka_unit_test(test_streams_and_grants),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
