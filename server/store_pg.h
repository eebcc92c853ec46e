/* store_pg — what the rest of vigild may know of the PostgreSQL engine
 * (everything else goes through store.h): a name for the database that is
 * safe to log, and a URL with its password masked. The engine itself is
 * store_pg*.c behind store_backend.h.
 *
 * Ownership: buf and arg are the caller's. Threads: any (no state). */
#ifndef VIGIL_STORE_PG_H
#define VIGIL_STORE_PG_H

#include <stddef.h>

/* The store path as logs may show it: a SQLite path as it is; a
 * postgresql:// or postgres:// URL as "postgresql host:port/dbname" — never
 * the user's password, nor the rest of the URL. */
void store_pg_log_name(const char *path, char *buf, size_t n);

/* Masks, in place, the password of a postgresql:// or postgres:// URL found
 * in arg (which may carry a prefix such as "--db="): the userinfo's
 * password and any `password=` parameter become "***", the rest of the
 * string moves left and the freed tail is zeroed, so neither the password
 * nor its length remains. Returns 1 if something was masked, else 0. For
 * main's argv, which `ps` and /proc/PID/cmdline show to every local user. */
int store_pg_hide_password(char *arg);

#endif
