/* config — vigild's settings: one declarative table (config.c) gives each
 * option its name, environment variable, type, bounds, default and help.
 * Values come from, in increasing precedence: defaults, the config file
 * (--config FILE or VIGIL_CONFIG), VIGIL_* environment variables, argv.
 * Out-of-range values are rejected with a message, never clamped.
 *
 * Secrets (the MQTT password) are taken from a file, the environment or the
 * config file — never from argv, where any local user could read them.
 *
 * Ownership: strings in vigil_config are malloc'ed and owned by the struct;
 * config_free() releases them. Single-threaded: main() only. */
#ifndef VIGIL_CONFIG_H
#define VIGIL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct vigil_config {
    /* broker */
    char *broker;          /* mqtt://host:port or mqtts://host:port */
    char *broker_host;     /* parsed from broker */
    int broker_port;
    int broker_tls;
    int mqtt_version;      /* 5 or 311, parsed from mqtt_version_s */
    char *mqtt_version_s;
    char *client_id;
    int keepalive_s;
    int64_t session_expiry_s;
    int ingest_hold_us;    /* pause after a read pass before reading again, µs (0: none; CONFIG_AUTO) */
    char *username;
    char *password;        /* from password_file, VIGIL_PASSWORD or the config file */
    char *password_file;
    char *tls_ca;
    char *tls_cert;
    char *tls_key;
    int tls_insecure;      /* 1 disables peer verification (never the default) */
    /* HTTP / WebSocket */
    char *listen;          /* host:port */
    char *listen_host;
    int listen_port;
    char *web_root;        /* NULL: no static files */
    int ws_queue;          /* messages queued per WebSocket client before it is dropped */
    int ws_flush_ms;       /* hub_set_flush_window: 0 sends at once */
    char *http_tls_cert;   /* PEM; with http_tls_key the listener speaks HTTPS only */
    char *http_tls_key;
    int allow_plain_http;  /* 1: plain HTTP on a non-loopback address is allowed (warned) */
    int plain_http_exposed;/* derived: plain HTTP on a non-loopback address */
    int max_ws_clients;    /* WebSocket upgrades past this answer 503 */
    int max_conns_per_ip;  /* open connections one peer address may hold */
    int64_t session_idle_s; /* login sessions: idle timeout */
    int64_t session_max_s;  /* login sessions: absolute lifetime */
    /* ingest and store */
    char *db;
    int max_payload;
    int store_queue;
    int64_t retention_s;   /* 0 keeps everything */
    int max_devices;       /* devices vigild knows at most; new ids beyond are refused */
    int new_devices_per_s; /* rate of new device ids admitted (token bucket) ... */
    int new_devices_burst; /* ... and its burst */
    /* misc */
    char *config_file;
    char *log_level;
} vigil_config;

typedef enum config_result {
    CONFIG_OK = 0,
    CONFIG_EXIT_OK = 1,    /* --help or --version was printed: exit 0 */
    CONFIG_ERROR = -1,     /* a message was printed to stderr: exit 2 */
} config_result;

/* Fills cfg from defaults, file, environment and argv, in that order. */
config_result config_load(vigil_config *cfg, int argc, char **argv);
void config_free(vigil_config *cfg);

/* Applies a config file's text ("key = value" lines, '#' comments; at most
 * CONFIG_LINE_MAX - 1 bytes a line) to cfg; name is used in messages.
 * Pure apart from the messages on stderr (and reading password-file).
 * Returns 0 or -1. */
#define CONFIG_LINE_MAX 4096
#define CONFIG_AUTO (-1) /* an option given as "auto" (--ingest-hold-us) */
int config_parse_text(vigil_config *cfg, const char *text, size_t len, const char *name);
/* Sets every option to its default (cfg is zeroed first). Returns 0 or -1. */
int config_defaults(vigil_config *cfg);
void config_print_help(const char *argv0);

/* Parses "mqtt://host:port" / "mqtts://host:port" (port defaults 1883/8883)
 * and "host:port" listen addresses. Returns 0 or -1; host is malloc'ed. */
int config_parse_url(const char *url, char **host, int *port, int *tls);
int config_parse_hostport(const char *s, char **host, int *port);
/* Durations: plain seconds or a number with s, m, h, d. Returns 0 or -1. */
int config_parse_duration(const char *s, int64_t *out_s);

#endif
