/* opt: the command-line conventions every iotrules binary shares.
 *
 * - `--name value` and `--name=value` mean the same.  opt_init rewrites
 *   each "--name=value" argument into the two arguments "--name" "value"
 *   before the program's own parser runs, so each parser handles one form.
 *   Arguments after a lone "--" are left alone.
 * - `--version` (anywhere before "--") prints "PROG 0.11.0" on stdout and
 *   exits 0.  --help stays each program's own (a synopsis on stdout, exit
 *   0).
 * - A usage error (unknown option, missing or bad value, wrong number of
 *   arguments) is one line on stderr, "PROG: REASON (see PROG --help)",
 *   and exit status 2.  Exit status 100 stays what it was: a bad
 *   configuration (or rules) that restarting will not fix.  The supervisor
 *   restarts an instance that exited 2 or 100 only slowly (every 30 s).
 *
 * The rewritten argv is allocated once and lives until exit. */
#ifndef IOTRULES_OPT_H
#define IOTRULES_OPT_H

/* Records prog for messages, handles --version, and rewrites argc and argv
 * as above.  Aborts on out of memory. */
void opt_init(const char *prog, int *argc, char ***argv);

/* The usage error exit: the message (printf format) on one line. */
void opt_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* argv[*i]'s value: argv[*i + 1] (and *i advanced), or a usage error
 * naming the option when there is none. */
const char *opt_value(int argc, char **argv, int *i);

/* Parses v as an integer in [min, max] into *out, or exits with a usage
 * error naming option o. */
long long opt_int(const char *o, const char *v, long long min, long long max);

/* An MQTT protocol version option: 3 (3.1.1) or 5, else a usage error. */
int opt_mqtt_version(const char *o, const char *v);

#endif
