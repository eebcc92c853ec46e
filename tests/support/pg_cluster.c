/* pg_cluster — see pg_cluster.h. */
#include "pg_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

const char *pg_cluster_url(void)
{
    const char *u = getenv("VIGIL_TEST_PG_URL");
    return u && *u ? u : NULL;
}

int pg_cluster_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (!ok) {
        fprintf(stderr, "pg_cluster: connect: %s", PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "pg_cluster: %s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return ok ? 0 : -1;
}

int pg_cluster_create_db(pg_testdb *db, const char *prefix)
{
    static int counter; /* tests run one at a time */
    const char *base = pg_cluster_url();
    const char *slash = base ? strrchr(base, '/') : NULL;
    if (!slash)
        return -1;
    snprintf(db->name, sizeof db->name, "%s_%d_%d", prefix, (int)getpid(), ++counter);
    snprintf(db->url, sizeof db->url, "%.*s/%s", (int)(slash - base), base, db->name);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    return pg_cluster_exec(base, sql);
}

int pg_cluster_drop_db(const pg_testdb *db)
{
    const char *base = pg_cluster_url();
    if (!base)
        return -1;
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    return pg_cluster_exec(base, sql);
}

int64_t pg_cluster_int(const char *url, const char *sql, int *ok)
{
    *ok = 0;
    PGconn *c = PQconnectdb(url);
    int64_t v = 0;
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pg_cluster: connect: %s", PQerrorMessage(c));
    } else {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= 1) {
            v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            *ok = 1;
        } else {
            fprintf(stderr, "pg_cluster: %s: %s", sql, PQresultErrorMessage(r));
        }
        PQclear(r);
    }
    PQfinish(c);
    return v;
}
