#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_proc[64] = "iotrules";
static enum log_level log_min = LOG_INFO;
static const char *log_names[] = {"debug", "info", "warn", "error"};

void
log_init(const char *proc)
{
	snprintf(log_proc, sizeof(log_proc), "%s", proc);
	const char *lv = getenv("IOTRULES_LOG_LEVEL");
	if (lv == NULL || lv[0] == 0)
		return;
	for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
		if (strcmp(lv, log_names[i]) == 0) {
			log_min = (enum log_level)i;
			return;
		}
	/* "warning" as syslog spells it; anything else is said once. */
	static int warned;
	if (strcmp(lv, "warning") == 0)
		log_min = LOG_WARN;
	else if (!warned++)
		fprintf(stderr, "{\"level\":\"warn\",\"proc\":\"%s\",\"msg\":\"IOTRULES_LOG_LEVEL must be error, warn, "
		    "info or debug; using info\"}\n", log_proc);
}

void
log_set_level(enum log_level lv)
{
	log_min = lv;
}

char *
log_json_str(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	if (cap < 3) {
		if (cap)
			out[0] = 0;
		return out;
	}
	out[o++] = '"';
	for (; s && *s && o + 8 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20) {
			o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = 0;
	return out;
}

static void
log_vwrite(enum log_level lv, const char *kv, const char *fmt, va_list ap)
{
	char msg[2048], qmsg[4200], qproc[150], line[8192];
	struct timeval tv;
	struct tm tm;

	if (lv < log_min)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
	    "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
	    "\"proc\":%s,\"msg\":%s%s%s}\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, (long)(tv.tv_usec / 1000), log_names[lv],
	    log_json_str(qproc, sizeof(qproc), log_proc),
	    log_json_str(qmsg, sizeof(qmsg), msg), kv ? "," : "", kv ? kv : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 2] = '}';
		line[n - 1] = '\n';
	}
	/* One write per line so lines from threads and processes sharing the
	 * supervisor's stderr do not interleave. */
	ssize_t w = write(2, line, (size_t)n);
	(void)w;
}

void
log_msg(enum log_level lv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lv, NULL, fmt, ap);
	va_end(ap);
}

void
log_kv(enum log_level lv, const char *kv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(lv, kv, fmt, ap);
	va_end(ap);
}

void
log_die(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(code);
}
