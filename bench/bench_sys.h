/* bench_sys — the operating-system bits the step driver and the publisher
 * workers share: per-process CPU time and memory from /proc, and a sleep
 * that survives signals.
 *
 * Ownership: nothing is kept. Threading: any thread may call any function. */
#ifndef VIGIL_BENCH_SYS_H
#define VIGIL_BENCH_SYS_H

/* User + system CPU seconds of pid so far, or -1 when it cannot be read. */
double bench_sys_cpu_s(int pid);
/* A "Key:   123 kB" line of /proc/pid/status (VmHWM, VmRSS), or -1. */
long bench_sys_kb(int pid, const char *key);
/* Sleeps s seconds in full, even across signals: callers check their own
 * stop flag between sleeps. */
void bench_sys_sleep_s(double s);

#endif
