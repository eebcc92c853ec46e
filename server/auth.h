/* auth — vigild's access-control logic, pure (no I/O, no clock: time is an
 * argument; the only outside input is libsodium's random generator):
 * password hashing (Argon2id) and verification, API tokens and session ids
 * (32 random bytes, base64url; kept as the hex BLAKE2b of the text shown to
 * the client, never in clear), Cookie and Authorization header parsing, the
 * CSRF compare, roles and the route → minimum-role table, the JSON bodies
 * of the auth routes, the login throttle, and the table of valid sessions
 * and tokens the web thread checks every request against.
 *
 * Roles, lowest to highest, each including the ones below: viewer,
 * clinician, technician, admin (docs/SECURITY.md, docs/PROTOCOL.md).
 *
 * Bounded tables and their "when full" rules:
 *   auth_throttle  `max` keys (usernames and addresses). When full, the key
 *                  with the oldest last failure is evicted first.
 *   auth_table     `max` sessions + tokens (live and recently deleted).
 *                  When full, auth_table_add answers AUTH_EFULL: a login then
 *                  answers 503; tokens loaded past the bound are not usable
 *                  (logged once by the caller).
 *
 * Ownership: tables own their entries (copied in). Parsed header values
 * point into the caller's buffer.
 *
 * Threads: none inside. sodium_init() must have run (main does it). Each
 * table has one owner thread (the web thread in vigild). Hashing is slow
 * (~50 ms, 64 MiB): never on the web thread. */
#ifndef VIGIL_AUTH_H
#define VIGIL_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "idtable.h"

#define AUTH_USER_MAX 64          /* username bytes */
#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
#define AUTH_PWHASH_MAX 128       /* crypto_pwhash_STRBYTES, with its NUL */
#define AUTH_SECRET_B64 43        /* 32 bytes, base64url without padding */
#define AUTH_TOKEN_PREFIX "vgt_"
#define AUTH_TOKEN_LEN (4 + AUTH_SECRET_B64)
#define AUTH_KEY_HEX 64           /* hex of a 32-byte BLAKE2b */
#define AUTH_ENTRY_KEY_MAX (AUTH_USER_MAX + 3) /* holds a key or "u:" + a username, with NUL */
#define AUTH_TOKEN_ID_LEN 12      /* hex of 6 random bytes */
#define AUTH_ROLE_NAME_MAX 15
#define AUTH_SESSION_COOKIE "vigil_session"
#define AUTH_THROTTLE_FREE 5      /* failures allowed before backoff */
#define AUTH_THROTTLE_CAP_MS (15 * 60 * 1000)

typedef enum auth_err {
    AUTH_OK = 0,
    AUTH_EINVAL = -1,   /* malformed input */
    AUTH_ENOMEM = -2,
    AUTH_ECRYPTO = -3,  /* libsodium refused (out of memory for Argon2) */
    AUTH_EFULL = -4,    /* a bounded table is full */
    AUTH_ENOTFOUND = -5,
} auth_err;

typedef enum auth_role {
    AUTH_ROLE_NONE = 0, /* no credentials needed */
    AUTH_ROLE_VIEWER = 1,
    AUTH_ROLE_CLINICIAN = 2,
    AUTH_ROLE_TECHNICIAN = 3,
    AUTH_ROLE_ADMIN = 4,
} auth_role;

typedef enum auth_method { AUTH_GET = 1, AUTH_POST, AUTH_PUT, AUTH_DELETE, AUTH_OTHER } auth_method;

/* ---- names ---- */
auth_err auth_role_parse(const char *s, auth_role *out); /* viewer..admin only */
const char *auth_role_name(auth_role r);                 /* "viewer"..; "none" */
int auth_username_valid(const char *s, size_t n);        /* 1..64 of [A-Za-z0-9_.@-], not . or .. */
int auth_password_valid(const char *s, size_t n);        /* 8..1024 bytes, no NUL or newline */

/* ---- passwords (slow: Argon2id, OPSLIMIT/MEMLIMIT_INTERACTIVE) ---- */
auth_err auth_password_hash(const char *pw, size_t n, char out[AUTH_PWHASH_MAX]);
/* 1 if pw matches hash, else 0 (also for a malformed hash). */
int auth_password_verify(const char *hash, const char *pw, size_t n);

/* ---- tokens, session ids, keys ---- */
/* A new secret as text: "vgt_" + 43 base64url for a token (with_prefix), or
 * 43 base64url for a session id / CSRF value. out: AUTH_TOKEN_LEN + 1. */
void auth_secret_new(int with_prefix, char *out, size_t outlen);
/* A new token id: 12 lowercase hex characters. out: AUTH_TOKEN_ID_LEN + 1. */
void auth_token_id_new(char out[AUTH_TOKEN_ID_LEN + 1]);
/* The stored form of a presented secret: hex BLAKE2b-256 of its text. */
void auth_key_of(const char *secret, size_t n, char out[AUTH_KEY_HEX + 1]);
/* 1 if s is a well-formed secret (token when with_prefix, else session id). */
int auth_secret_valid(const char *s, size_t n, int with_prefix);
/* Constant-time compare of a CSRF value; 1 if equal. */
int auth_csrf_equal(const char *expected, const char *got, size_t gotlen);

/* ---- headers ---- */
/* Finds cookie `name` in a Cookie header value. 1: *val and *vlen set (into
 * hdr); 0: absent. */
int auth_cookie_find(const char *hdr, size_t n, const char *name, const char **val, size_t *vlen);
/* "Bearer <token>" (scheme case-insensitive). 1: token span set; 0: no
 * Authorization or another scheme; -1: Bearer but malformed. */
int auth_bearer_parse(const char *hdr, size_t n, const char **tok, size_t *tlen);

/* ---- roles per route ---- */
/* The minimum role for a request, before its body is read. Commands
 * answer clinician here; the command itself is checked with
 * auth_command_role once the body is in. the session route, /healthz, /metrics
 * and static files answer AUTH_ROLE_NONE (handled by their routes). */
auth_role auth_route_role(auth_method m, const char *path);
/* ping and identify: clinician; every other command: technician. */
auth_role auth_command_role(const char *cmd);
/* The "cmd" string of a command body into out ("" if none). */
void auth_command_name(const char *body, size_t len, char *out, size_t outlen);

/* ---- bodies of the auth routes ---- */
typedef struct auth_fields {
    unsigned has;                        /* AUTH_F_* present (and valid) */
    char username[AUTH_USER_MAX + 1];    /* "username" */
    char name[AUTH_USER_MAX + 1];        /* "name" (token names follow the username rule) */
    auth_role role;                      /* "role" */
    char password[AUTH_PASSWORD_MAX + 1];
    size_t password_len;
} auth_fields;
#define AUTH_F_USERNAME 1u
#define AUTH_F_NAME 2u
#define AUTH_F_ROLE 4u
#define AUTH_F_PASSWORD 8u
/* Parses a JSON object; each known field present must be a valid string of
 * its kind, else AUTH_EINVAL with a message in err. Unknown keys are
 * ignored. The caller wipes out->password (auth_fields_wipe). */
auth_err auth_parse_fields(const char *body, size_t len, auth_fields *out, char *err, size_t errlen);
void auth_fields_wipe(auth_fields *f);

/* ---- login throttle (per username and per address) ---- */
typedef struct auth_throttle {
    idtable t;
    size_t max;
} auth_throttle;
auth_err auth_throttle_init(auth_throttle *th, size_t max);
void auth_throttle_free(auth_throttle *th);
/* Milliseconds until user (may be NULL) and addr may try again; 0: now. */
int64_t auth_throttle_wait(auth_throttle *th, const char *user, const char *addr, int64_t now_ms);
/* A failed login: after AUTH_THROTTLE_FREE failures each further one blocks
 * the key for 1 s, 2 s, 4 s ... up to AUTH_THROTTLE_CAP_MS. */
void auth_throttle_fail(auth_throttle *th, const char *user, const char *addr, int64_t now_ms);
/* A successful login forgets the username's failures (not the address'). */
void auth_throttle_ok(auth_throttle *th, const char *user);

/* ---- the table of valid sessions and tokens ---- */
/* AUTH_USER_MARK appears in snapshots only: "this user exists" (key
 * "u:" + name), so that sessions made here moments ago go as soon as their
 * user is deleted elsewhere. */
typedef enum auth_kind { AUTH_SESSION = 1, AUTH_TOKEN = 2, AUTH_USER_MARK = 3 } auth_kind;

typedef struct auth_entry {
    char key[AUTH_ENTRY_KEY_MAX];     /* auth_key_of(the presented secret); "u:" + name for a mark */
    auth_kind kind;
    auth_role role;
    char user[AUTH_USER_MAX + 1];     /* session: the user; token: its name */
    char id[AUTH_TOKEN_ID_LEN + 1];   /* token id; "" for a session */
    char csrf[AUTH_SECRET_B64 + 1];   /* session only */
    int64_t created_ms, last_used_ms;
    int64_t expires_ms;               /* session: absolute end; token: 0 */
    int64_t persisted_used_ms;        /* last_used as last written to the store */
    int64_t local_ms;                 /* added/deleted here at that time, not yet seen by a refresh; 0 */
    int dead;                         /* deleted here: kept as a tombstone until a refresh confirms */
    unsigned streams;                 /* WebSockets open on it: a session with one does not idle out */
} auth_entry;

typedef struct auth_table {
    idtable t;
    int64_t idle_ms, max_ms;          /* session idle timeout and absolute lifetime */
} auth_table;

/* How long a local add or delete wins over a refresh that does not show it
 * yet (the store writes asynchronously). */
#define AUTH_LOCAL_GRACE_MS 15000

auth_err auth_table_init(auth_table *at, size_t max, int64_t idle_ms, int64_t max_ms);
void auth_table_free(auth_table *at);
/* Adds e (marked local at now_ms). AUTH_EFULL when the table is full. */
auth_err auth_table_add(auth_table *at, const auth_entry *e, int64_t now_ms);
/* The live entry for key, or NULL. A session past its idle or absolute end
 * is deleted (tombstoned) and *expired set to 1 (caller deletes the row). */
auth_entry *auth_table_find(auth_table *at, const char *key, int64_t now_ms, int *expired);
/* The live token with that id, or NULL. */
auth_entry *auth_table_find_token_id(auth_table *at, const char *id);
/* Tombstones one entry; AUTH_ENOTFOUND if no live entry has that key. */
auth_err auth_table_kill(auth_table *at, const char *key, int64_t now_ms);
/* Tombstones every session of user; returns how many. */
size_t auth_table_kill_user(auth_table *at, const char *user, int64_t now_ms);
/* The same, but the session with key keep (NULL: none) stays: a password
 * change ends the user's other sessions, not the one that made it. */
size_t auth_table_kill_user_except(auth_table *at, const char *user, const char *keep, int64_t now_ms);
/* The live entry for key if it still grants exactly `role` (what a
 * WebSocket was opened with), else NULL: gone, expired (*expired as for
 * auth_table_find) or its role changed either way — the holder then
 * re-authenticates and gets the new role. */
auth_entry *auth_table_grants(auth_table *at, const char *key, auth_role role, int64_t now_ms, int *expired);
/* An open WebSocket counts as use of its credentials (docs/SECURITY.md):
 * stream_open counts one on key (a session with any does not idle out; its
 * absolute end still holds), stream_close uncounts it and restarts the idle
 * clock at now_ms. Both ignore a key no longer live. touch restarts the
 * idle clock of a live session (the periodic "still in use", so last_used
 * in the store stays fresh) and returns the live entry, or NULL. */
void auth_table_stream_open(auth_table *at, const char *key);
void auth_table_stream_close(auth_table *at, const char *key, int64_t now_ms);
auth_entry *auth_table_touch(auth_table *at, const char *key, int64_t now_ms);
/* Sets the role of every session of user. */
void auth_table_set_user_role(auth_table *at, const char *user, auth_role role);
/* Merges a snapshot read from the store (sessions joined with their user's
 * current role, and tokens): entries absent from it are removed unless
 * added here within AUTH_LOCAL_GRACE_MS (and, for a session, its user is
 * still marked in the snapshot); tombstones younger than that hide
 * the snapshot's copy; last_used keeps the later of both. Returns entries
 * that did not fit (AUTH_EFULL), 0 normally. */
size_t auth_table_merge(auth_table *at, const auth_entry *snap, size_t n, int64_t now_ms);
size_t auth_table_live_count(const auth_table *at);

#endif
