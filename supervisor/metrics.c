#include "supervisor/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "common/utf8.h"

/* ---- rendering ------------------------------------------------------------ */

void
metrics_label_value(buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
	while (p < end) {
		if (*p == '\\')
			buf_adds(out, "\\\\");
		else if (*p == '"')
			buf_adds(out, "\\\"");
		else if (*p == '\n')
			buf_adds(out, "\\n");
		else if (*p < 0x80)
			buf_addc(out, (char)*p);
		else {
			int n = utf8_seq_len(p, end);
			if (n == 0) {
				buf_adds(out, "\xef\xbf\xbd");   /* U+FFFD: the text format is UTF-8 */
				p++;
				continue;
			}
			buf_add(out, p, (size_t)n);
			p += n;
			continue;
		}
		p++;
	}
}

static void
family(buf *out, const char *name, const char *type, const char *help)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
sample(buf *out, const char *name, const char *label, const char *value, const char *num)
{
	buf_printf(out, "%s{%s=\"", name, label);
	metrics_label_value(out, value);
	buf_printf(out, "\"} %s\n", num);
}

static void
sample_u(buf *out, const char *name, const char *label, const char *value, uint64_t n)
{
	char t[32];
	snprintf(t, sizeof(t), "%llu", (unsigned long long)n);
	sample(out, name, label, value, t);
}

static int
is_sink(const char *stage)
{
	return strncmp(stage, "sink-", 5) == 0;
}

/* The counters of one kind for every rule. */
static void
rule_family(buf *out, const stats_view *v, const char *name, const char *help, int which)
{
	if (v->nrule == 0)
		return;
	family(out, name, "counter", help);
	for (int i = 0; i < v->nrule; i++) {
		const stats_rule *r = &v->rule[i];
		uint64_t n = which == 0 ? r->matched : which == 1 ? r->fired : which == 2 ? r->no_result : r->sql_errors;
		sample_u(out, name, "rule", r->name, n);
	}
}

/* One figure of every stage (sinks only: of every action). */
typedef uint64_t (*stage_fig)(const stats_stage *s);
static uint64_t fig_out(const stats_stage *s) { return s->out; }
static uint64_t fig_in(const stats_stage *s) { return s->in; }
static uint64_t fig_failed(const stats_stage *s) { return s->failed; }
static uint64_t fig_retried(const stats_stage *s) { return s->retried; }
static uint64_t fig_restarts(const stats_stage *s) { return s->restarts; }
static uint64_t fig_instances(const stats_stage *s) { return (uint64_t)s->instances; }
static uint64_t fig_pending(const stats_stage *s) { return s->pending; }
static uint64_t fig_spool_messages(const stats_stage *s) { return s->spool_messages; }
static uint64_t fig_spool_bytes(const stats_stage *s) { return s->spool_bytes; }

static void
action_family(buf *out, const stats_view *v, const char *name, const char *help, stage_fig f)
{
	int any = 0;
	for (int i = 0; i < v->nstage; i++) {
		if (!is_sink(v->stage[i].stage))
			continue;
		if (!any++)
			family(out, name, "counter", help);
		sample_u(out, name, "action", v->stage[i].stage + 5, f(&v->stage[i]));
	}
}

/* spool: only the stages that have one. */
static void
stage_family(buf *out, const stats_view *v, const char *name, const char *type, const char *help, stage_fig f,
    int spool)
{
	int any = 0;
	for (int i = 0; i < v->nstage; i++) {
		if (spool && !v->stage[i].has_spool)
			continue;
		if (!any++)
			family(out, name, type, help);
		sample_u(out, name, "stage", v->stage[i].stage, f(&v->stage[i]));
	}
}

static void
latency_family(buf *out, const stats_view *v)
{
	const char *name = "iotrules_action_delivery_seconds";
	int any = 0;
	for (int i = 0; i < v->nstage; i++) {
		const stats_stage *s = &v->stage[i];
		if (!is_sink(s->stage))
			continue;
		if (!any++)
			family(out, name, "histogram",
			    "Time from a message's arrival at ingest to its delivery being acknowledged by the "
			    "destination (retries and spool time included).");
		uint64_t cum = 0;
		for (int b = 0; b <= PROC_LATENCY_NLE; b++) {
			cum += s->lat.counts[b];
			char le[32];
			if (b < PROC_LATENCY_NLE)
				snprintf(le, sizeof(le), "%g", proc_latency_le_s[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			buf_printf(out, "%s_bucket{action=\"", name);
			metrics_label_value(out, s->stage + 5);
			buf_printf(out, "\",le=\"%s\"} %llu\n", le, (unsigned long long)cum);
		}
		char t[48];
		snprintf(t, sizeof(t), "%llu.%03llu", (unsigned long long)(s->lat.sum_ms / 1000),
		    (unsigned long long)(s->lat.sum_ms % 1000));
		buf_printf(out, "%s_sum{action=\"", name);
		metrics_label_value(out, s->stage + 5);
		buf_printf(out, "\"} %s\n", t);
		buf_printf(out, "%s_count{action=\"", name);
		metrics_label_value(out, s->stage + 5);
		buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
	}
}

void
metrics_render(const stats_view *v, buf *out)
{
	rule_family(out, v, "iotrules_rule_matched_total",
	    "Messages whose topic matched the rule's FROM filter (its SQL ran).", 0);
	rule_family(out, v, "iotrules_rule_fired_total",
	    "Messages for which the rule's SQL gave a result (its actions got a job each).", 1);
	rule_family(out, v, "iotrules_rule_no_result_total",
	    "Messages the rule matched whose WHERE clause was false (no result, no action).", 2);
	rule_family(out, v, "iotrules_rule_sql_errors_total",
	    "Messages for which the rule's SQL failed to evaluate.", 3);
	action_family(out, v, "iotrules_action_delivered_total", "Jobs delivered by the action's sink.", fig_out);
	action_family(out, v, "iotrules_action_failed_total",
	    "Jobs that failed for good (reported to the errorAction, if any).", fig_failed);
	action_family(out, v, "iotrules_action_retried_total",
	    "Delivery attempts that failed transiently and were retried.", fig_retried);
	latency_family(out, v);
	stage_family(out, v, "iotrules_stage_in_total", "counter",
	    "Records the stage's instances took in (messages, jobs or reports).", fig_in, 0);
	stage_family(out, v, "iotrules_stage_out_total", "counter",
	    "Records the stage's instances handed on or delivered.", fig_out, 0);
	stage_family(out, v, "iotrules_stage_failed_total", "counter",
	    "Records the stage's instances refused or failed for good.", fig_failed, 0);
	stage_family(out, v, "iotrules_stage_restarts_total", "counter",
	    "Restarts of the stage's instances after they exited or were killed (not rolling restarts).",
	    fig_restarts, 0);
	stage_family(out, v, "iotrules_stage_instances", "gauge", "Instances of the stage configured to run.",
	    fig_instances, 0);
	stage_family(out, v, "iotrules_stage_pending", "gauge",
	    "Records the stage holds and has not finished (spooled, or report groups being gathered).",
	    fig_pending, 0);
	stage_family(out, v, "iotrules_stage_spool_messages", "gauge",
	    "Records in the stage's spools not yet acknowledged.", fig_spool_messages, 1);
	stage_family(out, v, "iotrules_stage_spool_bytes", "gauge",
	    "Bytes on disk in the stage's spools not yet acknowledged.", fig_spool_bytes, 1);
	int any = 0;
	for (int i = 0; i < v->nstage; i++) {
		const stats_stage *s = &v->stage[i];
		if (!s->has_spool)
			continue;
		if (!any++)
			family(out, "iotrules_stage_spool_oldest_seconds", "gauge",
			    "Age of the oldest record waiting in the stage's spools (0: none, or not known).");
		char t[48];
		snprintf(t, sizeof(t), "%.3f", (double)s->spool_oldest_ms / 1000.0);
		sample(out, "iotrules_stage_spool_oldest_seconds", "stage", s->stage, t);
	}
}

/* ---- the endpoint ------------------------------------------------------- */

#define MAX_CONNS 8
#define HEAD_MAX 8192
#define READ_MS 1000
#define WRITE_MS 5000
#define RETRY_MS 10000
#define REMIND_MS 60000

typedef struct conn {
	int fd;
	int64_t deadline;
	char head[HEAD_MAX + 1];
	size_t hlen;
	buf resp;          /* non-empty: answering */
	size_t off;
} conn;

static struct {
	const char *listen, *run_dir;
	metrics_fill_fn fill;
	void *arg;
	int fd;            /* listening socket, -1 none */
	int64_t next_try, last_logged;
	char last_err[256];
	conn c[MAX_CONNS];
	int started;
} M = {.fd = -1};

static void
addr_path(char *out, size_t cap)
{
	snprintf(out, cap, "%s/metrics.addr", M.run_dir);
}

/* Splits "HOST:PORT" / "[V6]:PORT".  0, or -1 if it is not that. */
static int
split_listen(const char *l, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(l, ':');
	if (colon == NULL || colon[1] == 0 || strlen(colon + 1) >= pcap)
		return -1;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -1;
	size_t hn = (size_t)(colon - l);
	const char *h = l;
	if (hn >= 2 && l[0] == '[' && l[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (hn >= hcap)
		return -1;
	memcpy(host, h, hn);
	host[hn] = 0;
	snprintf(port, pcap, "%s", colon + 1);
	return atoi(port) <= 65535 ? 0 : -1;
}

static void
write_addr(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?", text[128], path[4400], tmp[4500];
	int port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		} else {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		}
	}
	snprintf(text, sizeof(text), ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
	log_info("metrics: serving http://%s/metrics", text);
	addr_path(path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
		log_error("metrics: cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
}

static void
bind_failed(const char *why)
{
	int64_t now = proc_now_ms();
	if (strcmp(why, M.last_err) != 0 || now - M.last_logged >= REMIND_MS) {
		log_error("metrics: cannot listen on %s: %s; the pipeline runs on, retrying every %d s", M.listen, why,
		    RETRY_MS / 1000);
		snprintf(M.last_err, sizeof(M.last_err), "%s", why);
		M.last_logged = now;
	}
	M.next_try = now + RETRY_MS;
}

static void
try_bind(void)
{
	char host[256], port[16];
	split_listen(M.listen, host, sizeof(host), port, sizeof(port));
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		bind_failed(gai_strerror(rc));
		return;
	}
	char why[256] = "no address";
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		int one = 1;
		if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 16) == 0) {
			M.fd = fd;
			break;
		}
		snprintf(why, sizeof(why), "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	freeaddrinfo(res);
	if (M.fd < 0) {
		bind_failed(why);
		return;
	}
	if (M.last_err[0])
		log_info("metrics: listening on %s now", M.listen);
	M.last_err[0] = 0;
	write_addr(M.fd);
}

int
metrics_start(const char *listen, const char *run_dir, metrics_fill_fn fill, void *arg)
{
	if (listen == NULL)
		return 0;
	char host[256], port[16], path[4400];
	M.run_dir = run_dir;
	addr_path(path, sizeof(path));
	unlink(path);   /* an earlier supervisor's */
	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0) {
		log_error("metrics_listen \"%s\" is not HOST:PORT; no metrics endpoint", listen);
		return -1;
	}
	M.listen = listen;
	M.fill = fill;
	M.arg = arg;
	for (int i = 0; i < MAX_CONNS; i++)
		M.c[i].fd = -1;
	M.started = 1;
	try_bind();
	return 0;
}

int
metrics_pollfds(struct pollfd *p, int cap)
{
	int n = 0, free_slot = 0;
	if (!M.started)
		return 0;
	for (int i = 0; i < MAX_CONNS && n < cap; i++) {
		conn *c = &M.c[i];
		if (c->fd < 0) {
			free_slot = 1;
			continue;
		}
		p[n].fd = c->fd;
		p[n].events = c->resp.len ? POLLOUT : POLLIN;
		p[n++].revents = 0;
	}
	/* No room for another connection: it waits in the backlog. */
	if (M.fd >= 0 && free_slot && n < cap) {
		p[n].fd = M.fd;
		p[n].events = POLLIN;
		p[n++].revents = 0;
	}
	return n;
}

static void
conn_close(conn *c)
{
	close(c->fd);
	c->fd = -1;
	buf_free(&c->resp);
	c->hlen = c->off = 0;
}

static void
answer(conn *c, int code, const char *reason, const char *ctype, const buf *body, int head_only)
{
	buf_printf(&c->resp,
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", code, reason,
	    ctype, body->len, code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only && body->len)
		buf_add(&c->resp, body->data, body->len);
	c->off = 0;
	c->deadline = proc_now_ms() + WRITE_MS;
}

/* The request head is complete: its request line decides the answer. */
static void
handle_request(conn *c)
{
	char method[16] = "", target[2048] = "";
	buf body = BUF_ZERO;
	c->head[c->hlen] = 0;
	if (sscanf(c->head, "%15s %2047s HTTP/", method, target) != 2) {
		buf_adds(&body, "bad request\n");
		answer(c, 400, "Bad Request", "text/plain; charset=utf-8", &body, 0);
		buf_free(&body);
		return;
	}
	char *q = strchr(target, '?');
	if (q)
		*q = 0;
	int get = strcmp(method, "GET") == 0, head = strcmp(method, "HEAD") == 0;
	if (strcmp(target, "/metrics") != 0) {
		buf_adds(&body, "not found: the metrics are at /metrics\n");
		answer(c, 404, "Not Found", "text/plain; charset=utf-8", &body, head);
	} else if (!get && !head) {
		buf_adds(&body, "method not allowed\n");
		answer(c, 405, "Method Not Allowed", "text/plain; charset=utf-8", &body, 0);
	} else {
		M.fill(&body, M.arg);
		answer(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body, head);
	}
	buf_free(&body);
}

static void
conn_read(conn *c)
{
	ssize_t n = read(c->fd, c->head + c->hlen, HEAD_MAX - c->hlen);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c);
		return;
	}
	if (n < 0)
		return;
	c->hlen += (size_t)n;
	c->head[c->hlen] = 0;
	if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
		handle_request(c);
	else if (c->hlen == HEAD_MAX) {
		buf body = BUF_ZERO;
		buf_adds(&body, "request head too large\n");
		answer(c, 431, "Request Header Fields Too Large", "text/plain; charset=utf-8", &body, 0);
		buf_free(&body);
	}
}

static void
conn_write(conn *c)
{
	while (c->off < c->resp.len) {
		ssize_t n = write(c->fd, c->resp.data + c->off, c->resp.len - c->off);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(c);
			return;
		}
		c->off += (size_t)n;
	}
	conn_close(c);
}

static void
accept_one(void)
{
	int fd = accept4(M.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CONNS; i++)
		if (M.c[i].fd < 0) {
			conn *c = &M.c[i];
			c->fd = fd;
			c->hlen = c->off = 0;
			c->deadline = proc_now_ms() + READ_MS;
			return;
		}
	close(fd);
}

void
metrics_service(const struct pollfd *p, int n)
{
	if (!M.started)
		return;
	for (int k = 0; k < n; k++) {
		if (p[k].revents == 0)
			continue;
		if (p[k].fd == M.fd) {
			accept_one();
			continue;
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			conn *c = &M.c[i];
			if (c->fd != p[k].fd)
				continue;
			if (c->resp.len)
				conn_write(c);
			else
				conn_read(c);
			/* The answer is usually written at once. */
			if (c->fd >= 0 && c->resp.len && c->off == 0)
				conn_write(c);
			break;
		}
	}
	int64_t now = proc_now_ms();
	for (int i = 0; i < MAX_CONNS; i++)
		if (M.c[i].fd >= 0 && now >= M.c[i].deadline)
			conn_close(&M.c[i]);
	if (M.fd < 0 && now >= M.next_try)
		try_bind();
}

void
metrics_stop(void)
{
	if (!M.started)
		return;
	for (int i = 0; i < MAX_CONNS; i++)
		if (M.c[i].fd >= 0)
			conn_close(&M.c[i]);
	if (M.fd >= 0) {
		close(M.fd);
		M.fd = -1;
		char path[4400];
		addr_path(path, sizeof(path));
		unlink(path);
	}
	M.started = 0;
}
