#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

_Atomic int log_threshold = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *name, int *out)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof *level_names); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

void log_write(int level, const char *tag, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (level < 0 || level > LOG_LEVEL_DEBUG)
        level = LOG_LEVEL_ERROR;
    /* One fprintf per line: stderr is unbuffered and glibc locks the stream. */
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %-9s %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, level_names[level], tag, msg);
}

int log_ratelimit_ok(log_ratelimit *rl, int64_t now_ms, uint64_t *suppressed)
{
    if (now_ms - rl->window_start_ms >= 10000) {
        rl->window_start_ms = now_ms;
        rl->used = 0;
    }
    if (rl->used >= rl->burst) {
        rl->suppressed++;
        return 0;
    }
    rl->used++;
    if (suppressed)
        *suppressed = rl->suppressed;
    rl->suppressed = 0;
    return 1;
}
