/* admin_cli — see admin_cli.h. */
#include "admin_cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth.h"
#include "log.h"
#include "store.h"
#include "store_pg.h"
#include "vclock.h"

#define TAG "cli"

static int admin_cli__usage(void)
{
    fprintf(stderr,
            "usage: vigild user add NAME --role ROLE [--db DB]   (password: one line on stdin)\n"
            "       vigild user passwd NAME [--db DB]             (password: one line on stdin)\n"
            "       vigild user del NAME [--db DB]\n"
            "       vigild user list [--db DB]\n"
            "       vigild token add NAME --role ROLE [--db DB]   (prints the token once)\n"
            "       vigild token list [--db DB]\n"
            "       vigild token del ID [--db DB]\n"
            "ROLE: viewer, clinician, technician or admin. DB defaults to $VIGIL_DB, else vigil.db.\n");
    return 2;
}

int admin_cli_wants(int argc, char **argv)
{
    return argc >= 2 && (!strcmp(argv[1], "user") || !strcmp(argv[1], "token"));
}

/* One line of stdin, without its newline, checked as a password. */
static int admin_cli__read_password(char *out, size_t outlen, size_t *n)
{
    if (!fgets(out, (int)outlen, stdin)) {
        fprintf(stderr, "vigild: expected the password as one line on standard input\n");
        return -1;
    }
    size_t len = strlen(out);
    int had_newline = len && out[len - 1] == '\n';
    if (had_newline)
        out[--len] = 0;
    if (len && out[len - 1] == '\r')
        out[--len] = 0;
    if (!had_newline && !feof(stdin)) {
        fprintf(stderr, "vigild: password longer than %d bytes\n", AUTH_PASSWORD_MAX);
        return -1;
    }
    if (!auth_password_valid(out, len)) {
        fprintf(stderr, "vigild: a password is %d..%d bytes\n", AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
        return -1;
    }
    *n = len;
    return 0;
}

static void admin_cli__audit(store *st, const char *action, const char *target, const char *detail)
{
    store_audit a = {.t_ms = vclock_wall_ms()};
    snprintf(a.user, sizeof a.user, "cli");
    snprintf(a.address, sizeof a.address, "local");
    snprintf(a.action, sizeof a.action, "%s", action);
    snprintf(a.target, sizeof a.target, "%s", target);
    snprintf(a.outcome, sizeof a.outcome, "ok");
    snprintf(a.detail, sizeof a.detail, "%s", detail ? detail : "");
    if (store_admin_audit(st, &a) != STORE_OK)
        fprintf(stderr, "vigild: warning: the audit row for %s was not written\n", action);
}

static void admin_cli__iso(int64_t ms, char *out, size_t n)
{
    if (ms <= 0) {
        snprintf(out, n, "-");
        return;
    }
    telemetry_format_iso(ms, out, n);
}

static int admin_cli__user(store *st, const char *verb, const char *name, const char *role_s)
{
    auth_role role = AUTH_ROLE_NONE;
    if (!strcmp(verb, "list")) {
        store_user *u;
        size_t n;
        if (store_list_users(st, &u, &n) != STORE_OK)
            return 1;
        for (size_t i = 0; i < n; i++) {
            char iso[32];
            admin_cli__iso(u[i].created_ms, iso, sizeof iso);
            printf("%-24s %-10s %s\n", u[i].name, u[i].role, iso);
        }
        free(u);
        return 0;
    }
    if (!name || !auth_username_valid(name, strlen(name))) {
        fprintf(stderr, "vigild: a user name is 1..64 of A-Z a-z 0-9 _ . @ - (not . or ..)\n");
        return 2;
    }
    if (!strcmp(verb, "del")) {
        store_err e = store_admin_user_del(st, name);
        if (e == STORE_ENOTFOUND)
            fprintf(stderr, "vigild: no user '%s'\n", name);
        if (e != STORE_OK)
            return 1;
        admin_cli__audit(st, "user_del", name, NULL);
        return 0;
    }
    int add = !strcmp(verb, "add");
    if (!add && strcmp(verb, "passwd"))
        return admin_cli__usage();
    if (add && (!role_s || auth_role_parse(role_s, &role) != AUTH_OK)) {
        fprintf(stderr, "vigild: --role must be viewer, clinician, technician or admin\n");
        return 2;
    }
    store_user u = {.created_ms = vclock_wall_ms()};
    char pw[AUTH_PASSWORD_MAX + 2];
    size_t pwlen = 0;
    int rc = admin_cli__read_password(pw, sizeof pw, &pwlen);
    if (rc == 0 && auth_password_hash(pw, pwlen, u.pwhash) != AUTH_OK) {
        fprintf(stderr, "vigild: cannot hash the password (out of memory?)\n");
        rc = -1;
    }
    sodium_memzero(pw, sizeof pw);
    if (rc != 0)
        return 1;
    snprintf(u.name, sizeof u.name, "%s", name);
    snprintf(u.role, sizeof u.role, "%s", auth_role_name(role));
    store_err e = add ? store_admin_user_add(st, &u) : store_admin_user_update(st, name, NULL, u.pwhash);
    sodium_memzero(u.pwhash, sizeof u.pwhash);
    if (e == STORE_EEXIST)
        fprintf(stderr, "vigild: user '%s' already exists\n", name);
    else if (e == STORE_ENOTFOUND)
        fprintf(stderr, "vigild: no user '%s'\n", name);
    if (e != STORE_OK)
        return 1;
    admin_cli__audit(st, add ? "user_add" : "user_update", name, add ? u.role : "password");
    return 0;
}

static int admin_cli__token(store *st, const char *verb, const char *arg, const char *role_s)
{
    if (!strcmp(verb, "list")) {
        store_token *t;
        size_t n;
        if (store_list_tokens(st, &t, &n) != STORE_OK)
            return 1;
        for (size_t i = 0; i < n; i++) {
            char c[32], u[32];
            admin_cli__iso(t[i].created_ms, c, sizeof c);
            admin_cli__iso(t[i].last_used_ms, u, sizeof u);
            printf("%-13s %-24s %-10s created %s last used %s\n", t[i].id, t[i].name, t[i].role, c, u);
        }
        free(t);
        return 0;
    }
    if (!strcmp(verb, "del")) {
        if (!arg || !*arg || strlen(arg) > STORE_TOKEN_ID_MAX)
            return admin_cli__usage();
        store_err e = store_admin_token_del(st, arg);
        if (e == STORE_ENOTFOUND)
            fprintf(stderr, "vigild: no token with id '%s'\n", arg);
        if (e != STORE_OK)
            return 1;
        admin_cli__audit(st, "token_del", arg, NULL);
        return 0;
    }
    if (strcmp(verb, "add"))
        return admin_cli__usage();
    auth_role role;
    if (!arg || !auth_username_valid(arg, strlen(arg))) {
        fprintf(stderr, "vigild: a token name is 1..64 of A-Z a-z 0-9 _ . @ -\n");
        return 2;
    }
    if (!role_s || auth_role_parse(role_s, &role) != AUTH_OK) {
        fprintf(stderr, "vigild: --role must be viewer, clinician, technician or admin\n");
        return 2;
    }
    char secret[AUTH_TOKEN_LEN + 1];
    store_token t = {.created_ms = vclock_wall_ms()};
    auth_secret_new(1, secret, sizeof secret);
    auth_key_of(secret, strlen(secret), t.key);
    auth_token_id_new(t.id);
    snprintf(t.name, sizeof t.name, "%s", arg);
    snprintf(t.role, sizeof t.role, "%s", auth_role_name(role));
    store_err e = store_admin_token_add(st, &t);
    if (e == STORE_OK) {
        printf("%s\n", secret);
        fflush(stdout);
        fprintf(stderr, "vigild: token '%s' (id %s, role %s) created; it is shown only this once\n", t.name,
                t.id, t.role);
        admin_cli__audit(st, "token_add", t.id, t.name);
    }
    sodium_memzero(secret, sizeof secret);
    return e == STORE_OK ? 0 : 1;
}

int admin_cli_run(int argc, char **argv)
{
    const char *db = getenv("VIGIL_DB"), *role = NULL, *pos[2] = {NULL, NULL};
    size_t npos = 0;
    if (!db || !*db)
        db = "vigil.db";
    if (argc < 3)
        return admin_cli__usage();
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else if (!strcmp(argv[i], "--role") && i + 1 < argc)
            role = argv[++i];
        else if (argv[i][0] == '-' || npos >= 1)
            return admin_cli__usage();
        else
            pos[npos++] = argv[i];
    }
    const char *verb = argv[2];
    int is_user = !strcmp(argv[1], "user");
    int known = !strcmp(verb, "add") || !strcmp(verb, "del") || !strcmp(verb, "list") ||
                (is_user && !strcmp(verb, "passwd"));
    if (!known || (!strcmp(verb, "list") ? npos != 0 : npos != 1) ||
        (role && strcmp(verb, "add")))
        return admin_cli__usage();
    atomic_store(&log_threshold, LOG_LEVEL_WARN); /* the CLI's stderr is for its own messages */
    char err[256] = "";
    store_options so = {.path = db, .queue_capacity = 1024};
    store *st = NULL;
    if (store_open(&so, &st, err, sizeof err) != STORE_OK) {
        char name[192]; /* never a URL's password */
        store_pg_log_name(db, name, sizeof name);
        fprintf(stderr, "vigild: cannot open the database %s: %s\n", name, err);
        return 1;
    }
    int rc = is_user ? admin_cli__user(st, verb, pos[0], role) : admin_cli__token(st, verb, pos[0], role);
    store_close(st);
    return rc;
}
