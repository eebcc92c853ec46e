/* libFuzzer target for the parsers of server/auth.c that see request bytes
 * before anyone is authenticated: the Cookie and Authorization headers, the
 * login / users / tokens bodies, a command's name, secrets' shape.
 *
 * Input: the first byte picks nothing; the whole input is fed to every
 * parser. Results must stay inside the input (header spans) and fields must
 * satisfy their own validity rules whenever the parser accepts them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fuzz_check.h"


static int inside(const char *base, size_t n, const char *p, size_t len)
{
    return p >= base && len <= n && (size_t)(p - base) <= n - len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy: ASan catches a read one past the header. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    const char *v;
    size_t n;
    if (auth_cookie_find(buf, size, AUTH_SESSION_COOKIE, &v, &n) == 1)
        CHECK(inside(buf, size, v, n) && n > 0);
    int b = auth_bearer_parse(buf, size, &v, &n);
    CHECK(b >= -1 && b <= 1);
    if (b == 1) {
        CHECK(inside(buf, size, v, n) && n > 0);
        (void)auth_secret_valid(v, n, 1);
    }
    (void)auth_secret_valid(buf, size, 0);
    (void)auth_username_valid(buf, size);
    (void)auth_password_valid(buf, size);

    auth_fields f;
    char err[128];
    if (auth_parse_fields(buf, size, &f, err, sizeof err) == AUTH_OK) {
        if (f.has & AUTH_F_USERNAME)
            CHECK(auth_username_valid(f.username, strlen(f.username)));
        if (f.has & AUTH_F_NAME)
            CHECK(auth_username_valid(f.name, strlen(f.name)));
        if (f.has & AUTH_F_PASSWORD)
            CHECK(auth_password_valid(f.password, f.password_len));
        if (f.has & AUTH_F_ROLE)
            CHECK(f.role >= AUTH_ROLE_VIEWER && f.role <= AUTH_ROLE_ADMIN);
        auth_fields_wipe(&f);
    }
    char cmd[32];
    auth_command_name(buf, size, cmd, sizeof cmd);
    CHECK(strlen(cmd) < sizeof cmd);
    /* Paths: any NUL-terminated string. */
    char *path = malloc(size + 1);
    if (path) {
        memcpy(path, data, size);
        path[size] = 0;
        auth_role r = auth_route_role(AUTH_POST, path);
        CHECK(r >= AUTH_ROLE_NONE && r <= AUTH_ROLE_ADMIN);
        free(path);
    }
    free(buf);
    return 0;
}
