/* device_id — see device_id.h. */
#include "device_id.h"

static int device_id__char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int device_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > DEVICE_ID_MAX)
        return 0;
    /* "." and ".." are path segments, not names: REST routes
     * (/api/devices/{id}) could never reach them. */
    if (s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')))
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!device_id__char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

int device_id_valid_str(const char *s)
{
    if (s == NULL)
        return 0;
    size_t n = 0;
    while (n <= DEVICE_ID_MAX && s[n] != '\0')
        n++;
    return device_id_valid(s, n);
}
