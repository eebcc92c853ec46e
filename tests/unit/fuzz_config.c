/* libFuzzer target for vigild's config file parser (server/config.c,
 * config_parse_text on top of the defaults).
 *
 * Invariants: the result is 0 or -1; on 0 every bounded option is within
 * its table bounds (a value is rejected, never clamped or wrapped) and
 * every string option is still set; config_free releases everything (ASan
 * checks). Inputs naming password-file are skipped: that option reads a
 * file, which a fuzzer must not aim at /dev or /proc. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);


int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The parser explains each rejection on stderr: keep the log short. */
    if (!freopen("/dev/null", "w", stderr))
        return 0;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (memmem(data, size, "password-file", 13))
        return 0;
    vigil_config cfg;
    CHECK(config_defaults(&cfg) == 0);
    int rc = config_parse_text(&cfg, (const char *)data, size, "fuzz.conf");
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        CHECK(cfg.keepalive_s >= 5 && cfg.keepalive_s <= 3600);
        CHECK(cfg.max_payload >= 64 && cfg.max_payload <= 65536);
        CHECK(cfg.store_queue >= 1024 && cfg.store_queue <= 10000000);
        CHECK(cfg.ws_queue >= 16 && cfg.ws_queue <= 1000000);
        CHECK(cfg.max_devices >= 1 && cfg.max_devices <= 10000000);
        CHECK(cfg.new_devices_per_s >= 1 && cfg.new_devices_burst >= 1);
        CHECK(cfg.session_expiry_s >= 0 && cfg.session_expiry_s <= 4294967295LL);
        CHECK(cfg.retention_s >= 0);
        CHECK(cfg.tls_insecure == 0 || cfg.tls_insecure == 1);
        CHECK(cfg.broker && cfg.listen && cfg.db && cfg.client_id && cfg.log_level);
    }
    config_free(&cfg);
    return 0;
}
