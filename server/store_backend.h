/* store_backend — the seam between the store's engine-independent front
 * (store.c: the bounded queue, the writer thread, group commit, retry with
 * backoff, the retention schedule, store_sync, stats) and a storage engine
 * that turns batches into transactions and answers reads:
 *   - store_sqlite*.c  the embedded default (a file path);
 *   - store_pg*.c      PostgreSQL over libpq (a postgresql:// URL).
 * store.c picks the engine from store_options.path (store_backend_for) and
 * only ever calls it through a store_backend table. Nothing but store.c and
 * the engines includes this header; everyone else sees store.h.
 *
 * Threads, as store.c calls an engine:
 *   - open, then close: the thread calling store_open / store_close (main),
 *     close only after the writer thread has been joined;
 *   - write_batch, prune: the store's writer thread only, one at a time;
 *   - reads (list_devices ... query_audit): any thread but the writer,
 *     possibly several at once — the engine serializes them itself;
 *   - admin_*: the caller's thread (the CLI process), through a connection
 *     the engine opens on first use and closes in close.
 * Ownership: impl belongs to the engine from open to close. Records passed
 * to write_batch belong to store.c and stay valid for the call only; arrays
 * an engine returns through out parameters are malloc'ed and owned by the
 * caller, as in store.h. */
#ifndef VIGIL_STORE_BACKEND_H
#define VIGIL_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "alarm.h"
#include "store.h"

#define STORE_TAG "store"

/* readings.flags: the TELEMETRY_HAS_* bits, then the device's validity flags. */
#define STORE_FLAG_PRESENT_MASK 0xFFFFu
#define STORE_FLAG_HR_VALID (1u << 16)
#define STORE_FLAG_SPO2_VALID (1u << 17)
#define STORE_FLAG_TEMP_VALID (1u << 18)

/* ---- what the queue holds --------------------------------------------- */

enum { STORE_REC_READING = 1, STORE_REC_STATUS, STORE_REC_LOST, STORE_REC_AUTH, STORE_REC_ALARM,
       STORE_REC_ALARM_SETTING };

typedef struct store_lost_rec {
    char device_id[TELEMETRY_ID_MAX + 1];
    int64_t boot, from_seq, to_seq, at_ms;
    char reason[16];
} store_lost_rec;

/* One condition's settings of one device (cond -1: the escalation
 * interval, in cs.onset_ms). */
typedef struct store_alarm_setting_rec {
    char device_id[TELEMETRY_ID_MAX + 1];
    char user[STORE_NAME_MAX + 1];
    int cond;
    alarm_cond_settings cs;
    int64_t at_ms;
} store_alarm_setting_rec;

typedef struct store_rec {
    int kind;
    union {
        telemetry_reading r;
        telemetry_status s;
        store_lost_rec l;
        store_auth_write a;
        alarm_event al;
        store_alarm_setting_rec as;
    } u;
} store_rec;

/* One stored alarm-settings row as an engine reads it back: cond is the
 * condition, -1 the escalation interval (in cs.onset_ms), -2 a name this
 * vigild does not know (a newer one's condition: ignored). */
typedef struct store_alarm_setting_row {
    char device_id[TELEMETRY_ID_MAX + 1];
    int cond;
    alarm_cond_settings cs;
} store_alarm_setting_row;
/* cond of a stored condition name ("escalation", "spo2_low", ...). */
int store_alarm_setting_cond(const char *name);
/* get_alarm_settings for an engine: rows over the defaults into *out;
 * STORE_OK, or STORE_ENOTFOUND when n == 0. */
store_err store_alarm_settings_of(const store_alarm_setting_row *rows, size_t n, alarm_settings *out);
/* load_alarm_settings for an engine: rows ordered by device, one settings
 * object (over the defaults) per device, cb once each. */
void store_alarm_settings_each(const store_alarm_setting_row *rows, size_t n,
                               void (*cb)(void *ctx, const char *device_id, const alarm_settings *s),
                               void *ctx);

/* The device a record is about, for log lines ("access control" for auth
 * records). */
const char *store_rec_device(const store_rec *rec);

/* ---- an engine -------------------------------------------------------- */

typedef enum store_wr {
    STORE_WR_OK = 0,  /* committed; counts in the result */
    STORE_WR_RETRY,   /* the transaction failed as a whole (I/O, lock held
                         elsewhere, connection lost...): nothing of the batch
                         is stored; store.c retries the same batch with backoff */
} store_wr;

typedef struct store_batch_result {
    uint64_t stored;      /* readings inserted */
    uint64_t duplicates;  /* readings already stored (device, boot, seq) */
    uint64_t rejected;    /* records refused permanently (constraint), logged and dropped */
} store_batch_result;

typedef struct store_backend {
    const char *name; /* "sqlite", "postgresql" — for logs and /healthz */

    /* Connects, creates or migrates the schema, prepares what the writer
     * needs. batch_max bounds write_batch's n. err gets a message on
     * failure (never a secret: no password, no full URL). */
    store_err (*open)(const store_options *opt, size_t batch_max, void **impl, char *err,
                      size_t errlen);
    void (*close)(void *impl);

    /* Writes n records (n <= batch_max), in queue order, in one transaction.
     * Readings are idempotent on (device, boot, seq): a reading already
     * stored counts as a duplicate, not an error. A record the database
     * refuses for itself (constraint) is dropped and counted as rejected
     * without failing the others. On STORE_WR_RETRY err says why (no
     * secrets); nothing of the batch may remain stored. */
    store_wr (*write_batch)(void *impl, const store_rec *batch, size_t n, store_batch_result *res,
                            char *err, size_t errlen);
    /* One retention step: removes readings with t < cutoff_ms, at most about
     * budget rows (an engine that drops whole partitions may remove more in
     * one step), plus audit rows older than cutoff_ms and sessions expired
     * at now_ms. Returns the readings removed, or -1 with err set. */
    int64_t (*prune)(void *impl, int64_t cutoff_ms, int64_t now_ms, int64_t budget, char *err,
                     size_t errlen);
    /* Optional (NULL: the engine writes each device's row with its batch).
     * An engine that copies a device's latest reading into its row later
     * than the reading's commit writes the rows of device_id (NULL: all)
     * now; store.c calls it on the writer thread before list_devices,
     * get_device and load_completeness read them. */
    store_wr (*flush_latest)(void *impl, const char *device_id, char *err, size_t errlen);

    /* Reads: the store.h functions of the same names, minus the store. */
    store_err (*list_devices)(void *impl, store_device **out, size_t *n);
    store_err (*get_device)(void *impl, const char *id, store_device *out);
    store_err (*query_readings)(void *impl, const char *id, int64_t from_ms, int64_t to_ms,
                                size_t max_points, store_series *out);
    store_err (*load_completeness)(void *impl, const store_completeness_cb *cb);
    store_err (*load_open_alarms)(void *impl, alarm_rec **out, size_t *n);
    store_err (*query_alarms)(void *impl, const char *device_id, int64_t from_ms, int64_t to_ms,
                              size_t limit, alarm_rec **out, size_t *n);
    store_err (*get_alarm_settings)(void *impl, const char *device_id, alarm_settings *out);
    store_err (*load_alarm_settings)(void *impl,
                                     void (*cb)(void *ctx, const char *device_id,
                                                const alarm_settings *s),
                                     void *ctx);
    store_err (*get_user)(void *impl, const char *name, store_user *out);
    store_err (*list_users)(void *impl, store_user **out, size_t *n);
    store_err (*list_tokens)(void *impl, store_token **out, size_t *n);
    store_err (*list_sessions)(void *impl, int64_t now_ms, store_session **out, size_t *n);
    store_err (*query_audit)(void *impl, int64_t from_ms, int64_t to_ms, const char *user,
                             size_t limit, store_audit **out, size_t *n);

    /* Administration (store.h store_admin_*). */
    store_err (*admin_user_add)(void *impl, const store_user *u);
    store_err (*admin_user_update)(void *impl, const char *name, const char *role,
                                   const char *pwhash);
    store_err (*admin_user_del)(void *impl, const char *name);
    store_err (*admin_token_add)(void *impl, const store_token *t);
    store_err (*admin_token_del)(void *impl, const char *id);
    store_err (*admin_audit)(void *impl, const store_audit *a);
} store_backend;

extern const store_backend store_sqlite_backend;
#ifdef VIGIL_HAVE_PG
extern const store_backend store_pg_backend;
#endif

/* 1 if path names a PostgreSQL database (postgresql:// or postgres://). */
int store_path_is_pg(const char *path);

#endif
