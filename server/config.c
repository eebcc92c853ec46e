#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "log.h"
#include "telemetry.h"

typedef enum opt_type { OPT_STR, OPT_INT, OPT_INT_AUTO, OPT_BOOL, OPT_DURATION, OPT_SECRET_FILE } opt_type;

/* One row per option. `off` is the field's offset in vigil_config; for
 * OPT_INT the field is an int (OPT_INT_AUTO: also the word "auto", stored as
 * CONFIG_AUTO), for OPT_DURATION an int64_t, for OPT_BOOL an
 * int, for OPT_STR / OPT_SECRET_FILE a char *. */
typedef struct opt_def {
    const char *name;     /* long option and config-file key */
    const char *env;      /* environment variable */
    opt_type type;
    size_t off;
    const char *def;      /* default, as text; NULL for none */
    int64_t min, max;     /* bounds for INT and DURATION */
    const char *help;
} opt_def;

#define F(field) offsetof(vigil_config, field)

static const opt_def opts[] = {
    {"broker", "VIGIL_BROKER", OPT_STR, F(broker), "mqtt://127.0.0.1:1883", 0, 0,
     "MQTT broker URL: mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"},
    {"listen", "VIGIL_LISTEN", OPT_STR, F(listen), "127.0.0.1:8080", 0, 0,
     "HTTP/WebSocket listen address HOST:PORT"},
    {"db", "VIGIL_DB", OPT_STR, F(db), "vigil.db", 0, 0, "SQLite database file, or a postgresql:// URL"},
    {"web-root", "VIGIL_WEB_ROOT", OPT_STR, F(web_root), NULL, 0, 0,
     "directory of the built dashboard, served at /"},
    {"config", "VIGIL_CONFIG", OPT_STR, F(config_file), NULL, 0, 0,
     "config file of 'key = value' lines (keys as the long options)"},
    {"mqtt-version", "VIGIL_MQTT_VERSION", OPT_STR, F(mqtt_version_s), "5", 0, 0,
     "MQTT protocol: 5, or 311 (also written 3.1.1)"},
    {"client-id", "VIGIL_CLIENT_ID", OPT_STR, F(client_id), "vigild", 0, 0,
     "MQTT client id; the persistent session is keyed on it"},
    {"keepalive", "VIGIL_KEEPALIVE", OPT_INT, F(keepalive_s), "30", 5, 3600,
     "MQTT keepalive, seconds"},
    {"session-expiry", "VIGIL_SESSION_EXPIRY", OPT_DURATION, F(session_expiry_s), "1d", 0,
     4294967295LL, "how long the broker keeps vigild's session (and queues readings) while it is away"},
    {"username", "VIGIL_USERNAME", OPT_STR, F(username), NULL, 0, 0, "MQTT username"},
    {"password-file", "VIGIL_PASSWORD_FILE", OPT_SECRET_FILE, F(password_file), NULL, 0, 0,
     "file holding the MQTT password (or set VIGIL_PASSWORD; never on the command line)"},
    {"tls-ca", "VIGIL_TLS_CA", OPT_STR, F(tls_ca), NULL, 0, 0,
     "CA certificate file for mqtts:// (default: the system's CAs)"},
    {"tls-cert", "VIGIL_TLS_CERT", OPT_STR, F(tls_cert), NULL, 0, 0, "client certificate (PEM)"},
    {"tls-key", "VIGIL_TLS_KEY", OPT_STR, F(tls_key), NULL, 0, 0, "client private key (PEM)"},
    {"tls-insecure", "VIGIL_TLS_INSECURE", OPT_BOOL, F(tls_insecure), "false", 0, 0,
     "skip broker certificate verification (testing only)"},
    {"max-payload", "VIGIL_MAX_PAYLOAD", OPT_INT, F(max_payload), "4096", 64, 65536,
     "largest accepted payload, bytes"},
    {"max-devices", "VIGIL_MAX_DEVICES", OPT_INT, F(max_devices), "20000", 1, 10000000,
     "devices vigild keeps at most; readings from new ids beyond are refused"},
    {"new-devices-per-s", "VIGIL_NEW_DEVICES_PER_S", OPT_INT, F(new_devices_per_s), "50", 1, 1000000,
     "new device ids admitted per second, after the burst"},
    {"new-devices-burst", "VIGIL_NEW_DEVICES_BURST", OPT_INT, F(new_devices_burst), "2000", 1,
     10000000, "new device ids admitted at once (a whole ward connecting)"},
    {"store-queue", "VIGIL_STORE_QUEUE", OPT_INT, F(store_queue), "100000", 1024, 10000000,
     "records waiting for the database before new ones are refused"},
    {"retention", "VIGIL_RETENTION", OPT_DURATION, F(retention_s), "30d", 0, 100LL * 365 * 86400,
     "keep readings this long (e.g. 7d, 12h; 0 keeps all)"},
    {"ws-queue", "VIGIL_WS_QUEUE", OPT_INT, F(ws_queue), "4096", 16, 1000000,
     "messages queued per WebSocket client before it is disconnected"},
    {"ws-flush-ms", "VIGIL_WS_FLUSH_MS", OPT_INT, F(ws_flush_ms), "0", 0, 1000,
     "hold live messages up to this many ms after the last send, to send them together (0: at once)"},
    {"ingest-hold-us", "VIGIL_INGEST_HOLD_US", OPT_INT_AUTO, F(ingest_hold_us), "auto", 0, 100000,
     "after reading from the broker, wait this many µs before reading again, to read in bursts (0: at once; "
     "auto: 1000 while readings arrive at 3,000/s or more, else at once)"},
    {"http-tls-cert", "VIGIL_HTTP_TLS_CERT", OPT_STR, F(http_tls_cert), NULL, 0, 0,
     "certificate (PEM) for vigild's own listener: HTTPS and wss:// only"},
    {"http-tls-key", "VIGIL_HTTP_TLS_KEY", OPT_STR, F(http_tls_key), NULL, 0, 0,
     "private key (PEM) for --http-tls-cert"},
    {"allow-plain-http", "VIGIL_ALLOW_PLAIN_HTTP", OPT_BOOL, F(allow_plain_http), "false", 0, 0,
     "allow plain HTTP on a non-loopback --listen address (warned; /healthz says so)"},
    {"max-ws-clients", "VIGIL_MAX_WS_CLIENTS", OPT_INT, F(max_ws_clients), "256", 1, 100000,
     "WebSocket clients at once; further upgrades answer 503"},
    {"max-conns-per-ip", "VIGIL_MAX_CONNS_PER_IP", OPT_INT, F(max_conns_per_ip), "128", 1, 100000,
     "open HTTP/WebSocket connections one peer address may hold; more are closed at once"},
    {"session-idle", "VIGIL_SESSION_IDLE", OPT_DURATION, F(session_idle_s), "12h", 1, 365LL * 86400,
     "a login session ends after this long without a request"},
    {"session-max", "VIGIL_SESSION_MAX", OPT_DURATION, F(session_max_s), "7d", 1, 365LL * 86400,
     "a login session ends this long after the login, used or not"},
    {"log-level", "VIGIL_LOG_LEVEL", OPT_STR, F(log_level), "info", 0, 0,
     "error, warn, info or debug"},
};
#define NOPTS (sizeof opts / sizeof *opts)

static void *config__field(vigil_config *cfg, const opt_def *o) { return (char *)cfg + o->off; }

int config_parse_duration(const char *s, int64_t *out_s)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    int64_t mul = 1;
    if (*end) {
        switch (*end) {
        case 's': mul = 1; break;
        case 'm': mul = 60; break;
        case 'h': mul = 3600; break;
        case 'd': mul = 86400; break;
        default: return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > INT64_MAX / mul)
        return -1;
    *out_s = v * mul;
    return 0;
}

static int config__read_secret_file(const char *path, char **out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int err = ferror(f);
    fclose(f);
    if (err)
        return -1;
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0; /* a trailing newline is not part of the secret */
    *out = strdup(buf);
    return *out ? 0 : -1;
}

/* Sets one option from text. `from` names the source for error messages. */
static int config__set_opt(vigil_config *cfg, const opt_def *o, const char *val, const char *from)
{
    void *p = config__field(cfg, o);
    switch (o->type) {
    case OPT_STR:
    case OPT_SECRET_FILE: {
        char *copy = strdup(val);
        if (!copy)
            return -1;
        free(*(char **)p);
        *(char **)p = copy;
        if (o->type == OPT_SECRET_FILE) {
            char *secret = NULL;
            if (config__read_secret_file(val, &secret) != 0) {
                /* No path in the message: whatever was typed here may be
                 * the secret itself, given to the wrong option. */
                fprintf(stderr, "vigild: %s: cannot read %s: %s\n", from, o->name,
                        strerror(errno));
                return -1;
            }
            free(cfg->password);
            cfg->password = secret;
        }
        return 0;
    }
    case OPT_INT_AUTO:
        if (strcmp(val, "auto") == 0) {
            *(int *)p = CONFIG_AUTO;
            return 0;
        }
        /* fall through */
    case OPT_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno || end == val || *end || v < o->min || v > o->max) {
            fprintf(stderr, "vigild: %s: %s must be an integer in %lld..%lld%s, got '%s'\n", from,
                    o->name, (long long)o->min, (long long)o->max, o->type == OPT_INT_AUTO ? " or auto" : "",
                    val);
            return -1;
        }
        *(int *)p = (int)v;
        return 0;
    }
    case OPT_DURATION: {
        int64_t v;
        if (config_parse_duration(val, &v) != 0 || v < o->min || v > o->max) {
            fprintf(stderr, "vigild: %s: %s must be a duration (e.g. 30s, 15m, 12h, 7d) up to %llds, got '%s'\n",
                    from, o->name, (long long)o->max, val);
            return -1;
        }
        *(int64_t *)p = v;
        return 0;
    }
    case OPT_BOOL:
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
            *(int *)p = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "off"))
            *(int *)p = 0;
        else {
            fprintf(stderr, "vigild: %s: %s must be true or false, got '%s'\n", from, o->name, val);
            return -1;
        }
        return 0;
    }
    return -1;
}

static const opt_def *config__find_opt(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (!strcmp(opts[i].name, name))
            return &opts[i];
    return NULL;
}

static char *config__trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* One "key = value" line (already trimmed, not a comment). */
static int config__apply_line(vigil_config *cfg, char *s, const char *from)
{
    char *eq = strchr(s, '=');
    if (!eq) {
        fprintf(stderr, "vigild: %s: expected 'key = value'\n", from);
        return -1;
    }
    *eq = 0;
    char *key = config__trim(s), *val = config__trim(eq + 1);
    if (!strcmp(key, "password")) { /* secrets may live in a protected config file */
        free(cfg->password);
        cfg->password = strdup(val);
        return cfg->password ? 0 : -1;
    }
    const opt_def *o = config__find_opt(key);
    if (!o || !strcmp(key, "config")) {
        fprintf(stderr, "vigild: %s: unknown key '%.64s'\n", from, key);
        return -1;
    }
    return config__set_opt(cfg, o, val, from);
}

int config_parse_text(vigil_config *cfg, const char *text, size_t len, const char *name)
{
    char line[CONFIG_LINE_MAX];
    int lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        char from[600];
        snprintf(from, sizeof from, "%.500s:%d", name, lineno);
        if (n >= sizeof line || memchr(text + pos, 0, n)) {
            fprintf(stderr, "vigild: %s: line too long or not text\n", from);
            return -1;
        }
        memcpy(line, text + pos, n);
        line[n] = 0;
        pos += n + (nl ? 1 : 0);
        char *s = config__trim(line);
        if (!*s || *s == '#')
            continue;
        if (config__apply_line(cfg, s, from) != 0)
            return -1;
    }
    return 0;
}

static int config__load_file(vigil_config *cfg, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "vigild: cannot open config file '%s': %s\n", path, strerror(errno));
        return -1;
    }
    enum { FILE_MAX = 1 << 20 };
    char *buf = malloc(FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    int rc = -1;
    if (bad)
        fprintf(stderr, "vigild: cannot read config file '%s'\n", path);
    else if (n > FILE_MAX)
        fprintf(stderr, "vigild: config file '%s' is larger than %d bytes\n", path, FILE_MAX);
    else
        rc = config_parse_text(cfg, buf, n, path);
    free(buf);
    return rc;
}

int config_parse_hostport(const char *s, char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    const char *h = s;
    size_t hlen = (size_t)(colon - s);
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') { /* [::1]:8080 */
        h++;
        hlen -= 2;
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 0 || p > 65535 || hlen == 0)
        return -1;
    *host = strndup(h, hlen);
    if (!*host)
        return -1;
    *port = (int)p;
    return 0;
}

int config_parse_url(const char *url, char **host, int *port, int *tls)
{
    const char *rest;
    if (!strncmp(url, "mqtt://", 7)) {
        rest = url + 7;
        *tls = 0;
    } else if (!strncmp(url, "mqtts://", 8)) {
        rest = url + 8;
        *tls = 1;
    } else
        return -1;
    size_t len = strcspn(rest, "/");
    if (rest[len] == '/' && rest[len + 1]) /* a path means something we do not speak */
        return -1;
    char hp[512];
    if (len == 0 || len >= sizeof hp)
        return -1;
    memcpy(hp, rest, len);
    hp[len] = 0;
    const char *colon = strrchr(hp, ':');
    int bracketed = hp[0] == '[';
    if (!colon || (bracketed && colon < strchr(hp, ']'))) {
        char with_port[540];
        snprintf(with_port, sizeof with_port, "%s:%d", hp, *tls ? 8883 : 1883);
        return config_parse_hostport(with_port, host, port);
    }
    return config_parse_hostport(hp, host, port);
}

void config_print_help(const char *argv0)
{
    printf("Usage: %s [OPTIONS]\n\n"
           "vigild — Vigil's backend: subscribes to device telemetry over MQTT, validates\n"
           "and stores it (SQLite), and serves it live over WebSocket and REST.\n\n"
           "Each option can also be set in the config file (key = value) or through its\n"
           "environment variable; the command line wins over the environment, which wins\n"
           "over the file.\n\n",
           argv0);
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_def *o = &opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->type == OPT_BOOL ? "[=BOOL]" : " VALUE");
        printf("  %-26s %s\n", left, o->help);
        printf("  %-26s env %s%s%s\n", "", o->env, o->def ? ", default " : "", o->def ? o->def : "");
    }
    printf("  %-26s %s\n", "--help", "show this help");
    printf("  %-26s %s\n\n", "--version", "show the version");
    printf("The MQTT password comes from --password-file, VIGIL_PASSWORD or the config\n"
           "file's 'password' key.\n");
}

/* 1 if host names only this machine: 127.0.0.0/8, ::1, localhost. */
static int config__is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Plain HTTP beyond loopback carries health data and (soon) session cookies
 * in clear: refuse it before anything binds, unless explicitly allowed. */
static int config__check_http_tls(vigil_config *cfg)
{
    if ((cfg->http_tls_cert == NULL) != (cfg->http_tls_key == NULL)) {
        fprintf(stderr, "vigild: --http-tls-cert and --http-tls-key go together\n");
        return -1;
    }
    cfg->plain_http_exposed = !cfg->http_tls_cert && !config__is_loopback(cfg->listen_host);
    if (cfg->plain_http_exposed && !cfg->allow_plain_http) {
        fprintf(stderr,
                "vigild: refusing plain HTTP on non-loopback address %s: give --http-tls-cert and "
                "--http-tls-key, or --allow-plain-http if a TLS proxy in front protects it\n",
                cfg->listen_host);
        return -1;
    }
    return 0;
}

static int config__finish(vigil_config *cfg)
{
    if (config_parse_url(cfg->broker, &cfg->broker_host, &cfg->broker_port, &cfg->broker_tls) != 0) {
        fprintf(stderr, "vigild: --broker: expected mqtt://HOST:PORT or mqtts://HOST:PORT, got '%s'\n",
                cfg->broker);
        return -1;
    }
    if (config_parse_hostport(cfg->listen, &cfg->listen_host, &cfg->listen_port) != 0) {
        fprintf(stderr, "vigild: --listen: expected HOST:PORT, got '%s'\n", cfg->listen);
        return -1;
    }
    if (!strcmp(cfg->mqtt_version_s, "5"))
        cfg->mqtt_version = 5;
    else if (!strcmp(cfg->mqtt_version_s, "311") || !strcmp(cfg->mqtt_version_s, "3.1.1"))
        cfg->mqtt_version = 311;
    else {
        fprintf(stderr, "vigild: --mqtt-version: expected 5 or 311 (3.1.1), got '%s'\n",
                cfg->mqtt_version_s);
        return -1;
    }
    int lvl;
    if (log_parse_level(cfg->log_level, &lvl) != 0) {
        fprintf(stderr, "vigild: --log-level: expected error, warn, info or debug, got '%s'\n",
                cfg->log_level);
        return -1;
    }
    atomic_store(&log_threshold, lvl);
    if (!cfg->client_id[0] || strlen(cfg->client_id) > 23 * 10) {
        fprintf(stderr, "vigild: --client-id must be 1..230 characters\n");
        return -1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        fprintf(stderr, "vigild: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (config__check_http_tls(cfg) != 0)
        return -1;
    if (cfg->web_root && !cfg->web_root[0]) {
        free(cfg->web_root);
        cfg->web_root = NULL;
    }
    return 0;
}

/* What config__next_arg found. */
enum { CONFIG__ARG_END, CONFIG__ARG_OPT, CONFIG__ARG_HELP, CONFIG__ARG_VERSION, CONFIG__ARG_ERROR };

/* The next item of argv from *i: "--name VALUE", "--name=VALUE", a bare
 * "--flag" for booleans, -h/--help, -V/--version. Names match exactly:
 * getopt_long takes any unambiguous prefix, so "--password X" used to be
 * --password-file X. When `report` is set an error is printed (naming the
 * option, never echoing a value: it may be a secret typed in the wrong
 * place); otherwise bad items are skipped. */
static int config__next_arg(int argc, char **argv, int *i, int report, const opt_def **o,
                            const char **val)
{
    while (*i < argc) {
        const char *a = argv[(*i)++];
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return CONFIG__ARG_HELP;
        if (!strcmp(a, "-V") || !strcmp(a, "--version"))
            return CONFIG__ARG_VERSION;
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (!report)
                continue;
            if (!strcmp(a, "--") || a[0] == '-')
                fprintf(stderr, "vigild: unrecognized option '%.64s' (see --help)\n", a);
            else
                fprintf(stderr, "vigild: unexpected argument '%.64s' (see --help)\n", a);
            return CONFIG__ARG_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opt_def *d = NULL;
        for (size_t k = 0; k < NOPTS && !d; k++)
            if (strlen(opts[k].name) == nlen && !memcmp(opts[k].name, name, nlen))
                d = &opts[k];
        if (!d) {
            if (!report)
                continue;
            fprintf(stderr, "vigild: unrecognized option '--%.*s' (see --help)\n",
                    (int)(nlen > 64 ? 64 : nlen), name);
            return CONFIG__ARG_ERROR;
        }
        if (eq)
            *val = eq + 1;
        else if (d->type == OPT_BOOL)
            *val = "true";
        else if (*i < argc)
            *val = argv[(*i)++];
        else {
            if (!report)
                continue;
            fprintf(stderr, "vigild: option '--%s' requires an argument\n", d->name);
            return CONFIG__ARG_ERROR;
        }
        *o = d;
        return CONFIG__ARG_OPT;
    }
    return CONFIG__ARG_END;
}

int config_defaults(vigil_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].def && config__set_opt(cfg, &opts[i], opts[i].def, "default") != 0)
            return -1;
    return 0;
}

config_result config_load(vigil_config *cfg, int argc, char **argv)
{
    if (config_defaults(cfg) != 0)
        return CONFIG_ERROR;

    /* Pass 1: --help, --version and --config, which decide what else to
     * read. Errors are reported by pass 2. */
    const char *config_path = getenv("VIGIL_CONFIG");
    int i = 1, c;
    const opt_def *o;
    const char *val;
    while ((c = config__next_arg(argc, argv, &i, 0, &o, &val)) != CONFIG__ARG_END) {
        if (c == CONFIG__ARG_HELP) {
            config_print_help(argv[0]);
            return CONFIG_EXIT_OK;
        }
        if (c == CONFIG__ARG_VERSION) {
            printf("vigild %s\n", VIGIL_VERSION);
            return CONFIG_EXIT_OK;
        }
        if (c == CONFIG__ARG_OPT && !strcmp(o->name, "config"))
            config_path = val;
    }
    if (config_path) {
        if (config__set_opt(cfg, config__find_opt("config"), config_path, "--config") != 0)
            return CONFIG_ERROR;
        if (config__load_file(cfg, config_path) != 0)
            return CONFIG_ERROR;
    }

    /* Environment. */
    for (size_t k = 0; k < NOPTS; k++) {
        const char *v = getenv(opts[k].env);
        if (v && strcmp(opts[k].name, "config") != 0 && config__set_opt(cfg, &opts[k], v, opts[k].env) != 0)
            return CONFIG_ERROR;
    }
    const char *pw = getenv("VIGIL_PASSWORD");
    if (pw) {
        free(cfg->password);
        cfg->password = strdup(pw);
        if (!cfg->password)
            return CONFIG_ERROR;
    }

    /* Pass 2: the command line. */
    i = 1;
    while ((c = config__next_arg(argc, argv, &i, 1, &o, &val)) != CONFIG__ARG_END) {
        if (c == CONFIG__ARG_ERROR)
            return CONFIG_ERROR; /* printed why */
        if (c != CONFIG__ARG_OPT || !strcmp(o->name, "config"))
            continue;
        if (config__set_opt(cfg, o, val, "command line") != 0)
            return CONFIG_ERROR;
    }
    return config__finish(cfg) == 0 ? CONFIG_OK : CONFIG_ERROR;
}

void config_free(vigil_config *cfg)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opts[i].type == OPT_STR || opts[i].type == OPT_SECRET_FILE) {
            char **p = config__field(cfg, &opts[i]);
            free(*p);
            *p = NULL;
        }
    free(cfg->password);
    free(cfg->broker_host);
    free(cfg->listen_host);
    cfg->password = cfg->broker_host = cfg->listen_host = NULL;
}
