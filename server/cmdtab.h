/* cmdtab — the commands vigild sent and still awaits an ack for: per
 * device at most CMDTAB_PER_DEVICE cmd_ids (a new one replaces the oldest),
 * at most max_devices devices (when full, recording fails and that
 * command's ack will be refused), each entry kept ttl_ms. An ack is
 * accepted only for a cmd_id sent to that device and not yet expired or
 * answered (docs/PROTOCOL.md, "Result"): a device cannot forge results of
 * commands nobody gave.
 *
 * Pure: no I/O, no clock (times passed in), no threads. Threads: one owner
 * (vigild's ingest thread). Ownership: strings are copied. */
#ifndef VIGIL_CMDTAB_H
#define VIGIL_CMDTAB_H

#include <stddef.h>
#include <stdint.h>

#include "idtable.h"

#define CMDTAB_PER_DEVICE 8
#define CMDTAB_ID_MAX 64 /* COMMAND_ID_MAX */

typedef struct cmdtab {
    idtable devs;  /* cmdtab__dev entries, keyed by device id */
    int64_t ttl_ms;
} cmdtab;

/* 0, or -1 (ENOMEM, bad values). */
int cmdtab_init(cmdtab *t, size_t max_devices, int64_t ttl_ms);
void cmdtab_free(cmdtab *t); /* idempotent */

/* Remembers cmd_id as sent to device id at now_ms. 0, or -1 (table full,
 * id or cmd_id too long or empty). */
int cmdtab_record(cmdtab *t, const char *id, const char *cmd_id, int64_t now_ms);

/* 1 if cmd_id was sent to id and has not expired nor been answered: it is
 * then consumed (one ack per command); else 0. */
int cmdtab_match(cmdtab *t, const char *id, const char *cmd_id, int64_t now_ms);

/* Drops expired entries (and devices left with none). Bounded by the
 * table's size. */
void cmdtab_expire(cmdtab *t, int64_t now_ms);

size_t cmdtab_pending(const cmdtab *t); /* entries not yet expired by cmdtab_expire */

#endif
