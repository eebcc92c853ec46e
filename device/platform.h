/* platform — the seam between the portable device core and what it runs on.
 *
 * The device core (session, outbox, telemetry encoder, drivers) never
 * includes a platform header: everything it needs from the outside world
 * (clocks, MQTT, persistent storage, logging, the I2C bus, reboot) goes
 * through this struct of function pointers. firmware/esp32 fills it with
 * esp-mqtt, esp_timer, SNTP and NVS; vigil-sim with libmosquitto and an
 * in-memory key-value store; the tests with a recording fake.
 *
 * Ownership: the struct, ctx and i2c bus belong to the platform; the core
 * only borrows them and must outlive nothing. Threading: every function is
 * called from the one task/thread that drives the session; implementations
 * that publish from another task (esp-mqtt) must be safe to call from it. */
#ifndef VIGIL_PLATFORM_H
#define VIGIL_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "i2c_bus.h"

typedef enum platform_status {
    PLATFORM_OK = 0,
    PLATFORM_ENOTCONN = -1,  /* not connected to the broker: nothing was sent */
    PLATFORM_EFULL = -2,     /* the transport's own queue is full: nothing was sent */
    PLATFORM_ENOTFOUND = -3, /* kv_get: no such key */
    PLATFORM_EIO = -4,       /* any other failure (flash write, socket error) */
    PLATFORM_EINVAL = -5,    /* bad argument (topic too long, payload too big) */
} platform_status;

typedef enum platform_log_level {
    PLATFORM_LOG_ERROR = 0,
    PLATFORM_LOG_WARN = 1,
    PLATFORM_LOG_INFO = 2,
    PLATFORM_LOG_DEBUG = 3,
} platform_log_level;

typedef struct platform {
    /* Monotonic milliseconds since some fixed point (boot). Never goes back. */
    uint64_t (*mono_ms)(void *ctx);
    /* Wall clock in epoch milliseconds. Returns true only once the clock is
     * synchronised (SNTP); *epoch_ms is then meaningful. */
    bool (*wall_ms)(void *ctx, uint64_t *epoch_ms);
    /* Queues one MQTT message. PLATFORM_OK means the transport accepted it
     * (for QoS 1 it will retry until PUBACK); anything else means it was not
     * sent and the caller still owns the reading. */
    platform_status (*publish)(void *ctx, const char *topic, const void *payload, size_t len,
                               int qos, bool retain);
    /* Subscribes; called again on every connect (no persistent session). */
    platform_status (*subscribe)(void *ctx, const char *topic, int qos);
    /* Persistent 32-bit values (NVS keys are at most 15 characters). */
    platform_status (*kv_get_u32)(void *ctx, const char *key, uint32_t *value);
    platform_status (*kv_set_u32)(void *ctx, const char *key, uint32_t value);
    /* One log line, without a trailing newline. May be NULL. */
    void (*log)(void *ctx, platform_log_level level, const char *msg);
    /* Restarts the device after the current call returns (the ESP32 calls
     * esp_restart from its main loop; the sim re-creates the session). May
     * be NULL: the reboot command then answers ok:false. */
    void (*reboot)(void *ctx);
    /* Makes the device visible to a nurse (blink the LED). May be NULL. */
    void (*identify)(void *ctx);
    /* The sensors' bus; NULL when the core runs without real drivers. */
    i2c_bus *i2c;
    void *ctx;
} platform;

/* A raw flash region for the outbox (flash_ring.h): NOR semantics. erase
 * sets whole sectors to 0xFF (off and len multiples of sector_size);
 * program only clears bits (off and len multiples of prog_size, into
 * erased bytes); read anything. Offsets are relative to the region. A power
 * cut may interrupt any erase or program, leaving it partly done. The ESP32
 * fills it with esp_partition_erase_range/write/read on the "outbox" data
 * partition, vigil-sim with a file per device, the tests with RAM. */
typedef struct platform_flash {
    platform_status (*read)(void *ctx, uint32_t off, void *buf, size_t len);
    platform_status (*program)(void *ctx, uint32_t off, const void *buf, size_t len);
    platform_status (*erase)(void *ctx, uint32_t off, size_t len);
    uint32_t size;        /* bytes, a multiple of sector_size */
    uint32_t sector_size; /* erase unit, e.g. 4096 */
    uint32_t prog_size;   /* program granularity, a divisor of 32 (1 on ESP32 NOR, 16 encrypted) */
    void *ctx;
} platform_flash;

/* Persistent keys used by the core. */
#define PLATFORM_KEY_INTERVAL "interval_ms"
#define PLATFORM_KEY_BOOT "boot"

#endif
