/* store_pg — what the rest of vigild may know of the PostgreSQL engine
 * (everything else goes through store.h): a name for the database that is
 * safe to log. The engine itself is store_pg*.c behind store_backend.h.
 *
 * Ownership: buf is the caller's. Threads: any (no state). */
#ifndef VIGIL_STORE_PG_H
#define VIGIL_STORE_PG_H

#include <stddef.h>

/* The store path as logs may show it: a SQLite path as it is; a
 * postgresql:// or postgres:// URL as "postgresql host:port/dbname" — never
 * the user's password, nor the rest of the URL. */
void store_pg_log_name(const char *path, char *buf, size_t n);

#endif
