/* log: one JSON object per line on stderr.
 *
 * Every process logs through here so that the supervisor (and a user's
 * shell) sees a uniform stream: {"ts":...,"level":"error","proc":"ingest-1",
 * "msg":"...", ...}.  log_init() sets the process name used in "proc".
 * Lines below the level in $IOTRULES_LOG_LEVEL (error, warn, info,
 * debug; default info), read by log_init, are not written.
 * The format arguments build the "msg" text; extra fields are given as a
 * preformatted JSON fragment with log_kv (no leading comma), or NULL. */
#ifndef IOTRULES_LOG_H
#define IOTRULES_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_init(const char *proc);
void log_set_level(enum log_level lv);

/* Logs msg (printf format).  Thread-safe: one write(2) per line. */
void log_msg(enum log_level lv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Same, with extra JSON members: kv is e.g. "\"file\":\"x.json\"" built
 * with log_json_str.  kv may be NULL. */
void log_kv(enum log_level lv, const char *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s as a JSON string literal (quotes included) into out, at most
 * cap bytes including the NUL; truncates safely.  Returns out. */
char *log_json_str(char *out, size_t cap, const char *s);

/* Logs at LOG_ERROR and exits with code. */
void log_die(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
