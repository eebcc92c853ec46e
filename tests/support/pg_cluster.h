/* pg_cluster — the C side of tests/support/pg_cluster.py for tests that
 * run the store on PostgreSQL: a fresh database per test on the private
 * cluster whose URL pg_cluster.py puts in VIGIL_TEST_PG_URL.
 *
 * Ownership: a pg_testdb is the caller's (stack or heap); the strings
 * returned point into it or into the environment. Threads: any, one
 * pg_testdb per thread at a time. Every call connects anew (tests only). */
#ifndef VIGIL_TEST_PG_CLUSTER_H
#define VIGIL_TEST_PG_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pg_testdb {
    char name[64];  /* the database */
    char url[256];  /* postgresql://...@host:port/name, with the password */
} pg_testdb;

/* VIGIL_TEST_PG_URL, or NULL when unset or empty: run on SQLite then. */
const char *pg_cluster_url(void);
/* One command on url; 0, or -1 with the server's message printed. */
int pg_cluster_exec(const char *url, const char *sql);
/* CREATE DATABASE <prefix>_<pid>_<n> on the cluster; db->url names it. */
int pg_cluster_create_db(pg_testdb *db, const char *prefix);
/* DROP DATABASE ... WITH (FORCE). */
int pg_cluster_drop_db(const pg_testdb *db);
/* One integer of a query on url (the first column of its only row);
 * ok = 0 on any failure (message printed). */
int64_t pg_cluster_int(const char *url, const char *sql, int *ok);

#endif
