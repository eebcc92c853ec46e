/* admin_cli — `vigild user …` and `vigild token …`: administration of the
 * access-control tables from the command line, in a process of its own
 * that may run beside a running vigild (which picks the changes up within
 * 5 s). It opens the database directly (creating and migrating it if
 * missing), makes synchronous admin calls (store.h) and closes it.
 *
 * Passwords are read as one line from standard input, never from argv.
 * `token add` prints the new token, and nothing else, on stdout: it is
 * shown once and stored hashed. Messages go to stderr.
 *
 * Threads: main only, before anything else starts. sodium_init() first. */
#ifndef VIGIL_ADMIN_CLI_H
#define VIGIL_ADMIN_CLI_H

/* 1 if argv names a CLI verb (argv[1] is "user" or "token"). */
int admin_cli_wants(int argc, char **argv);
/* Runs it; returns the exit code: 0 ok, 1 failure, 2 usage. */
int admin_cli_run(int argc, char **argv);

#endif
