/* libFuzzer target for the SQL engine (`make fuzz`).
 *
 * Input: one flag byte (bit 0: SQL version 2016-03-23, else 2015-10-08),
 * then SQL text, a NUL, payload bytes, a NUL, template text, a NUL, MQTT 5
 * properties JSON (envelope.h ENV_PROPS shape).  Missing parts are empty.  The statement is compiled; if it compiles it runs on
 * the payload (and is explained); the template is compiled and rendered
 * with the statement's SET variables.  Any crash, leak, sanitizer report
 * or abort is a finding: the engine must turn every input into a result,
 * Undefined or an error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evaluate/sql/sql.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum sql_version ver = (data[0] & 1) ? SQL_2016 : SQL_2015;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	const char *z1 = memchr(p, 0, (size_t)(end - p));
	const char *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
	size_t sql_len = z1 ? (size_t)(z1 - p) : (size_t)(end - p);
	const char *pay = z1 ? z1 + 1 : end;
	size_t pay_len = z1 ? (size_t)((z2 ? z2 : end) - pay) : 0;
	const char *tpl = z2 ? z2 + 1 : end;
	const char *z3 = z2 ? memchr(tpl, 0, (size_t)(end - tpl)) : NULL;
	size_t tpl_len = (size_t)((z3 ? z3 : end) - tpl);
	const char *props = z3 ? z3 + 1 : NULL;
	size_t props_len = z3 ? (size_t)(end - props) : 0;

	/* The compilers take NUL-terminated text. */
	char *sql = strndup(p, sql_len);
	char *tpl_text = strndup(tpl, tpl_len);
	if (sql == NULL || tpl_text == NULL) {
		free(sql);
		free(tpl_text);
		return 0;
	}
	sql_error err;
	sql_stmt *st = sql_compile(sql, ver, &err);
	sql_msg m = {.topic = "sensors/dev-1/telemetry", .clientid = "fuzz", .payload = pay,
	    .payload_len = pay_len, .timestamp_ms = 1700000000000, .traceid = "00000000-0000-0000-0000-000000000000",
	    .accountid = "123456789012", .mqtt_props = props, .mqtt_props_len = props_len};
	sql_ctx c;
	sql_ctx_init(&c);
	buf out = BUF_ZERO;
	if (st) {
		sql_ctx_begin(&c, &m);
		sql_run(st, &c, &out, &err);
		buf_reset(&out);
		sql_explain(st, &c, &out);
		sql_stmt_from(st);
		sql_stmt_warning(st);
	}
	sql_template *t = sql_template_compile(tpl_text, ver, &err);
	if (t) {
		sql_ctx_begin(&c, &m);
		buf_reset(&out);
		sql_template_render(t, st, &c, &out);
		sql_template_free(t);
	}
	sql_topic_filter_check(sql, &err);
	buf_free(&out);
	sql_ctx_fini(&c);
	sql_free(st);
	free(sql);
	free(tpl_text);
	return 0;
}
