/* sched_probe — see sched_probe.h. */
#include "sched_probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

long long sched_probe_slice(pid_t tid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/sched", (int)tid);
    FILE *f = fopen(path, "r");
    long long v = -1;
    for (int i = 0; f && i < 200 && fgets(line, sizeof line, f); i++) {
        const char *c = strchr(line, ':');
        if (strncmp(line, "se.slice", 8) == 0 && c)
            v = strtoll(c + 1, NULL, 10);
    }
    if (f)
        fclose(f);
    return v;
}

int sched_probe_kernel_sets_slices(void)
{
    struct utsname u;
    int major = 0, minor = 0;
    if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &major, &minor) != 2)
        return 0;
    return major > 6 || (major == 6 && minor >= 12);
}
