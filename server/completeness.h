/* completeness — "nothing lost, nothing doubled" as pure logic: for every
 * (device, boot) the set of readings vigild has durably accepted, kept as a
 * compact list of seq intervals, the gaps in it, and the decisions about
 * them: when to ask the device to resend (coalesced, rate-limited, retried
 * with backoff) and when to give a gap up as lost. No I/O, no clock, no
 * threads: the caller passes the time in and carries the decisions out
 * (publishing resend commands, persisting lost ranges).
 *
 * Model, per boot of a device:
 *   base .. hi      the seqs the device is known to have produced (hi = the
 *                   highest seq seen; base = 1 when the boot was first seen
 *                   live at a seq within lead_max of 1, else the first seq
 *                   seen or the first seq stored);
 *   recv            intervals of seqs accepted by the store;
 *   lost            intervals given up (device said missing, boot replaced
 *                   past the deadline, retries exhausted, too big to ask);
 *   pending gaps    [base, hi] minus recv minus lost.
 * One reading cannot redefine the range: a seq more than max_jump above hi
 * is untracked (the caller still stores it) unless jump_confirm such seqs
 * in a row, each within max_jump of the last, say the device really
 * skipped ahead. A boot first seen far from 1 starts at that seq (lead_max).
 * A seq is counted once however often it arrives (duplicates are ignored).
 * Tails are invisible: readings after the last one seen cannot be known
 * until a later one arrives, or until the device says how far an earlier
 * boot went (completeness_on_boot_end: after a power cut its next boot
 * announces it), docs/RELIABILITY.md.
 *
 * Resend policy (completeness_tick): at most one outstanding request per
 * device; a gap is asked for only once it has been quiet for settle_ms (a
 * reconnecting device replays its backlog after the live reading, so young
 * gaps usually fill by themselves); ranges closer than coalesce_slack are
 * merged into one request of at most max_span seqs; a global token bucket
 * (rate_per_s, burst) bounds the command rate of the whole fleet; an
 * unanswered request times out after ack_timeout_ms << (tries - 1); the same
 * range asked max_tries times is marked lost.
 *
 * Modules: the interval sets are ivset.h, the JSON views completeness_json.h.
 *
 * Threads and ownership: a completeness is owned by one thread (vigild's
 * ingest thread). It is not internally locked; any other thread must go
 * through the owner's lock (tracker.c). Device ids are copied. Memory is
 * bounded: max_devices devices, max_boots boots per device (the oldest boot
 * is retired into the device totals), max_ranges intervals per list (when
 * full, the smallest pending gap is marked lost so tracking stays exact). */
#ifndef VIGIL_COMPLETENESS_H
#define VIGIL_COMPLETENESS_H

#include <stddef.h>
#include <stdint.h>

typedef struct ivset ivset; /* ivset.h */

typedef struct completeness completeness;

typedef struct completeness_config {
    int64_t settle_ms;          /* quiet time before a gap is first asked for */
    int64_t ack_timeout_ms;     /* first timeout; doubles per try */
    int max_tries;              /* requests for the same range before it is lost */
    int64_t old_boot_deadline_ms; /* a replaced boot's gaps are lost after this */
    double rate_per_s;          /* global resend requests per second */
    double burst;               /* global bucket size */
    uint64_t max_span;          /* seqs per request */
    uint64_t coalesce_slack;    /* merge gaps separated by at most this many seqs */
    uint64_t lead_max;          /* a new boot first seen at seq s <= lead_max + 1 has a gap 1..s-1 */
    uint64_t max_gap;           /* a single gap bigger than this is lost at once (no device holds it) */
    uint64_t max_jump;          /* a seq more than this above a boot's hi is untracked unless ... */
    int jump_confirm;           /* ... it is the jump_confirm-th of a run of such seqs (default 3) */
    size_t max_ranges;          /* intervals per list */
    size_t max_boots;           /* boots tracked per device */
    size_t max_devices;
} completeness_config;

/* Defaults used for any zero field. */
void completeness_config_defaults(completeness_config *cfg);

completeness *completeness_new(const completeness_config *cfg);
void completeness_free(completeness *c);

/* Why a range was given up. */
typedef enum completeness_reason {
    COMPLETENESS_LOST_MISSING = 1, /* the device answered missing */
    COMPLETENESS_LOST_REBOOT,      /* boot replaced, gap unfilled past the deadline */
    COMPLETENESS_LOST_RETRIES,     /* no answer / not refilled after max_tries */
    COMPLETENESS_LOST_UNSUPPORTED, /* the device cannot resend at all */
    COMPLETENESS_LOST_TOO_BIG,     /* larger than max_gap, or tracking capacity exceeded */
} completeness_reason;
const char *completeness_reason_name(completeness_reason r);

/* ---- decisions ----
 * The feeding functions and the tick do not act: they append what must be
 * done to a caller-provided, bounded completeness_actions, and the caller
 * carries it out after the call (tracker.h: after dropping its lock).
 * Appending never fails the model, which stays exact whatever fits:
 *   requests  the tick issues no more requests than there is room for
 *             (a full list is like max_requests reached: the rest go next
 *             tick). A request the caller then could not publish must be
 *             reported with completeness_request_failed, which un-issues it
 *             (not counted, its token back, asked again 1 s later) — the
 *             same as a refused publish always meant.
 *   lost      every range is counted in the model when it is given up; a
 *             range that does not fit is only summed into lost_overflow_*
 *             (the caller counts those seqs and says once that they were not
 *             persisted, as when the store refuses a lost range).
 *   gaps      counted (gaps_opened), never dropped. */
#define COMPLETENESS_ID_MAX 64
#define COMPLETENESS_ACTIONS_REQUESTS 64
#define COMPLETENESS_ACTIONS_LOST 256

typedef struct completeness_request { /* publish a resend command */
    char id[COMPLETENESS_ID_MAX + 1];
    int64_t boot, from, to;
    uint64_t req_id;
} completeness_request;

typedef struct completeness_lost { /* persist a lost range */
    char id[COMPLETENESS_ID_MAX + 1];
    int64_t boot, from, to;
    completeness_reason why;
} completeness_lost;

typedef struct completeness_actions {
    completeness_request requests[COMPLETENESS_ACTIONS_REQUESTS];
    size_t nrequests;
    completeness_lost lost[COMPLETENESS_ACTIONS_LOST];
    size_t nlost;
    uint64_t lost_overflow_ranges, lost_overflow_seqs; /* lost ranges that did not fit */
    uint64_t gaps_opened;                              /* new gaps detected */
} completeness_actions;

/* Empties the list (the model only ever appends). */
void completeness_actions_clear(completeness_actions *a);

/* What a stored reading was to the model. */
typedef enum completeness_result {
    COMPLETENESS_NEW = 0,     /* a seq not seen before */
    COMPLETENESS_REFILLED,    /* new, and inside the outstanding resend request */
    COMPLETENESS_DUPLICATE,   /* seen before: not counted again */
    COMPLETENESS_UNTRACKED,   /* bad values or tracking capacity: not counted */
} completeness_result;

/* Totals since tracking began (counters of retired boots included). */
typedef struct completeness_counts {
    uint64_t expected, received, refilled, lost;
    uint64_t pending;          /* expected - received - lost */
    uint64_t gaps_detected;    /* gaps opened */
    uint64_t requests;         /* resend requests issued */
    uint64_t duplicates;       /* seqs seen again (not counted) */
} completeness_counts;

/* ---- feeding (owner thread) ---- */

/* Startup, before any live reading: a stored island [lo, hi] of (device,
 * boot), and a persisted lost range. Islands may come in any order. */
int completeness_load_island(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi);
int completeness_load_lost(completeness *c, const char *id, int64_t boot, int64_t lo, int64_t hi);
/* Ends loading: for each device the highest boot is current, the others
 * are replaced as of now_ms. */
void completeness_load_done(completeness *c, int64_t now_ms);

/* Several instances (cluster.h): a device's stream changes hands. pred
 * picks devices by id (1 = this one). completeness_forget_if drops every
 * picked device — boots, counters, its outstanding request — so that it
 * can be loaded again from the store; returns how many. While a device is
 * reloaded (load_island/load_lost after a forget), completeness_load_done_if
 * ends loading of the picked devices only, leaving the others' timers as
 * they are. */
typedef int (*completeness_pick)(void *ctx, const char *id);
size_t completeness_forget_if(completeness *c, completeness_pick pred, void *ctx);
void completeness_load_done_if(completeness *c, completeness_pick pred, void *ctx, int64_t now_ms);

/* A reading of (boot, seq) the store accepted. Refills and gaps are
 * counted here; new gaps and capacity losses are appended to out. */
completeness_result completeness_on_reading(completeness *c, completeness_actions *out,
                                            const char *id, int64_t boot, int64_t seq,
                                            int64_t now_ms);

/* A reading the store could NOT accept (queue full): it exists, so hi moves
 * past it and it becomes a pending gap, re-requested later. */
int completeness_on_unstored(completeness *c, completeness_actions *out, const char *id,
                             int64_t boot, int64_t seq, int64_t now_ms);

/* The device says boot `boot` took seqs up to last_seq (its next boot's
 * online status, prev_boot / prev_last_seq, after a power cut lost what
 * the outbox had not yet written). Moves that boot's hi up to last_seq, so
 * what never arrived becomes a pending gap that is asked for (and, when the
 * device answers missing, marked lost): the tail is not silently absent.
 * Bounded like a reading: last_seq more than max_jump above hi (above 0
 * for a boot not seen yet) is refused. A boot not tracked is created with
 * base 1 only when it is above the device's current boot (else it is one
 * that was retired: refused). Returns 1 if hi moved, 0 if nothing was new
 * (a retained status seen again), -1 if refused. */
int completeness_on_boot_end(completeness *c, completeness_actions *out, const char *id,
                             int64_t boot, int64_t last_seq, int64_t now_ms);

/* The device's answer to request req_id. ok: the command ran; sent and
 * missing as in the ack (missing = seqs of the range it no longer has —
 * the oldest ones, as its outbox is a ring). permanent: the device cannot
 * resend at all (unknown command). Unknown / stale req_id: ignored
 * (returns -1). */
int completeness_on_ack(completeness *c, completeness_actions *out, const char *id,
                        uint64_t req_id, int ok, int permanent, uint64_t sent, uint64_t missing,
                        int64_t now_ms);

/* Drives timeouts, deadlines and requests. can_request = 0 (broker down,
 * store congested) defers every new request. Bounded: at most max_requests
 * requests are issued per call, and no more than out has room for.
 * Returns the number issued (appended to out->requests). */
size_t completeness_tick(completeness *c, completeness_actions *out, int64_t now_ms,
                         int can_request, size_t max_requests);
/* Cost: a tick looks only at the devices that may be due (kept ordered by
 * due time), O(log n) each, so one with nothing due is O(1) whatever the
 * fleet. The devices the ticks have looked at so far (tests, profiling). */
uint64_t completeness_tick_visits(const completeness *c);

/* Request req_id of device id, just issued by a tick, could not be
 * published: undone as if never issued (not counted, token returned, the
 * previous request's retry count kept) and asked again after 1 s. Returns 0,
 * or -1 if req_id is not that device's outstanding request. */
int completeness_request_failed(completeness *c, const char *id, uint64_t req_id, int64_t now_ms);

/* ---- views (owner thread, or under the owner's lock) ---- */

int completeness_counts_get(const completeness *c, const char *id, completeness_counts *out);
void completeness_totals(const completeness *c, completeness_counts *out);

/* A read-only look at one device, for the JSON views (completeness_json.h).
 * Pointers are the model's: valid until the next feeding call. Boots in
 * the model's order, at most COMPLETENESS_VIEW_BOOTS. */
#define COMPLETENESS_VIEW_BOOTS 64
typedef struct completeness_boot_view {
    int64_t boot, base, hi;   /* expected seqs base..hi (none while hi < base) */
    uint64_t refilled;
    const ivset *recv, *lost;
} completeness_boot_view;

typedef struct completeness_device_view {
    const char *id;
    int64_t current;          /* highest boot seen; -1 none */
    uint64_t untracked;
    completeness_counts retired; /* expected/received/refilled/lost of retired boots */
    size_t nboots;
    completeness_boot_view boots[COMPLETENESS_VIEW_BOOTS];
} completeness_device_view;

/* Returns 0, or -1 if the device is not tracked. */
int completeness_device_view_get(const completeness *c, const char *id,
                                 completeness_device_view *out);
/* The first pending run of b starting at or after x within [x, end]:
 * returns 1 and sets [*lo, *hi], or 0 if none. */
int completeness_boot_next_pending(const completeness_boot_view *b, int64_t x, int64_t end,
                                   int64_t *lo, int64_t *hi);

#endif
