/* Unit tests of sinks/lib/ddbjson: JSON ↔ DynamoDB JSON, both ways.  Each
 * case is named by its input, so a table row cannot carry a wrong label. */
#include <string.h>

#include "sinks/lib/ddbjson.h"
#include "tests/unit/tap.h"

typedef int (*conv_fn)(buf *, const char *, size_t);

/* in → want (want NULL: error e expected, out left as it was). */
struct conv_case {
	const char *in, *want;
	int e;
};

static void
run(const char *fname, conv_fn f, const struct conv_case *cs)
{
	for (int i = 0; cs[i].in; i++) {
		buf out = BUF_ZERO;
		buf_adds(&out, "pre");   /* appends, and keeps what was there on failure */
		int e = f(&out, cs[i].in, strlen(cs[i].in));
		if (cs[i].want) {
			char name[300];
			snprintf(name, sizeof(name), "%s(%.200s)", fname, cs[i].in);
			ok(e == DDBJSON_OK, "%s: OK (got %d)", name, e);
			is_str(out.data + 3, cs[i].want, name);
		} else {
			ok(e == cs[i].e && out.len == 3 && strcmp(out.data, "pre") == 0, "%s(%.200s): %s (got %d, out '%s')",
			    fname, cs[i].in, ddbjson_strerror(cs[i].e), e, out.data);
		}
		buf_free(&out);
	}
}

static const struct conv_case from_json[] = {
    {"\"abc\"", "{\"S\":\"abc\"}", 0},
    {"\"\"", "{\"S\":\"\"}", 0},
    {"\"a\\\"b\\\\c\\n\\u00e9\\/\"", "{\"S\":\"a\\\"b\\\\c\\n\\u00e9\\/\"}", 0},
    {"\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"", "{\"S\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}", 0},
    {"12", "{\"N\":\"12\"}", 0},
    {"-0.5", "{\"N\":\"-0.5\"}", 0},
    {"1.50e+3", "{\"N\":\"1.50e+3\"}", 0},
    {"123456789012345678901234567890123456789", "{\"N\":\"123456789012345678901234567890123456789\"}", 0},
    {"0.1000000000000000000001", "{\"N\":\"0.1000000000000000000001\"}", 0},
    {"true", "{\"BOOL\":true}", 0},
    {"false", "{\"BOOL\":false}", 0},
    {"null", "{\"NULL\":true}", 0},
    {" \n\t{}\r\n", "{\"M\":{}}", 0},
    {"[]", "{\"L\":[]}", 0},
    {"{\"device\":\"d1\",\"seq\":7,\"ok\":true,\"none\":null}",
        "{\"M\":{\"device\":{\"S\":\"d1\"},\"seq\":{\"N\":\"7\"},\"ok\":{\"BOOL\":true},\"none\":{\"NULL\":true}}}", 0},
    {"{ \"a\" : { \"b\" : [ 1 , \"x\" , [ ] , { } , false ] } }",
        "{\"M\":{\"a\":{\"M\":{\"b\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"L\":[]},{\"M\":{}},{\"BOOL\":false}]}}}}}", 0},
    {"", NULL, DDBJSON_ESYNTAX},
    {"   ", NULL, DDBJSON_ESYNTAX},
    {"abc", NULL, DDBJSON_ESYNTAX},
    {"tru", NULL, DDBJSON_ESYNTAX},
    {"nulls", NULL, DDBJSON_ESYNTAX},
    {"01", NULL, DDBJSON_ESYNTAX},
    {"1.", NULL, DDBJSON_ESYNTAX},
    {".5", NULL, DDBJSON_ESYNTAX},
    {"+1", NULL, DDBJSON_ESYNTAX},
    {"1e", NULL, DDBJSON_ESYNTAX},
    {"-", NULL, DDBJSON_ESYNTAX},
    {"1 2", NULL, DDBJSON_ESYNTAX},
    {"{\"a\":1,}", NULL, DDBJSON_ESYNTAX},
    {"{\"a\" 1}", NULL, DDBJSON_ESYNTAX},
    {"{a:1}", NULL, DDBJSON_ESYNTAX},
    {"[1,2", NULL, DDBJSON_ESYNTAX},
    {"[1;2]", NULL, DDBJSON_ESYNTAX},
    {"\"unterminated", NULL, DDBJSON_ESYNTAX},
    {"\"bad \\x escape\"", NULL, DDBJSON_ESYNTAX},
    {"\"bad \\u12g4\"", NULL, DDBJSON_ESYNTAX},
    {"\"raw\ttab\"", NULL, DDBJSON_ESYNTAX},
    {"\"\xff\xfe\"", NULL, DDBJSON_ESYNTAX},
    {"\"\xc0\xaf\"", NULL, DDBJSON_ESYNTAX},             /* overlong '/' */
    {"\"\xed\xa0\x80\"", NULL, DDBJSON_ESYNTAX},         /* a UTF-16 surrogate */
    {"\"\xe2\x82\"", NULL, DDBJSON_ESYNTAX},             /* cut short */
    {"GIF89a\x01\x02", NULL, DDBJSON_ESYNTAX},
    {NULL, NULL, 0}};

static const struct conv_case item_from_json[] = {
    {"{\"id\":\"a\",\"t\":21.5,\"tags\":[\"x\"]}", "{\"id\":{\"S\":\"a\"},\"t\":{\"N\":\"21.5\"},\"tags\":{\"L\":[{\"S\":\"x\"}]}}", 0},
    {"{}", "{}", 0},
    {"[1]", NULL, DDBJSON_ENOTOBJ},
    {"\"s\"", NULL, DDBJSON_ENOTOBJ},
    {"12", NULL, DDBJSON_ENOTOBJ},
    {"{\"a\":", NULL, DDBJSON_ESYNTAX},
    {NULL, NULL, 0}};

static const struct conv_case to_json[] = {
    {"{\"S\":\"abc\"}", "\"abc\"", 0},
    {"{\"S\":\"a\\\"b\\u00e9\"}", "\"a\\\"b\xc3\xa9\"", 0},
    {"{\"N\":\"12\"}", "12", 0},
    {"{\"N\":\"-0.5\"}", "-0.5", 0},
    {"{\"N\":\"+5\"}", "5", 0},
    {"{\"N\":\".5\"}", "0.5", 0},
    {"{\"N\":\"-.5E-3\"}", "-0.5E-3", 0},
    {"{\"N\":\"5.\"}", "5", 0},
    {"{\"N\":\"007\"}", "7", 0},
    {"{\"N\":\"0\"}", "0", 0},
    {"{\"N\":\"123456789012345678901234567890123456789\"}", "123456789012345678901234567890123456789", 0},
    {"{\"BOOL\":true}", "true", 0},
    {"{\"BOOL\":false}", "false", 0},
    {"{\"NULL\":true}", "null", 0},
    {"{\"B\":\"AAEC\"}", "\"AAEC\"", 0},
    {"{\"M\":{}}", "{}", 0},
    {"{\"L\":[]}", "[]", 0},
    {"{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"NULL\":true},{\"M\":{\"b\":{\"BOOL\":false}}}]}}}",
        "{\"a\":[1,\"x\",null,{\"b\":false}]}", 0},
    {"{\"SS\":[\"a\",\"b\"]}", "[\"a\",\"b\"]", 0},
    {"{\"NS\":[\"1\",\"2.5\"]}", "[1,2.5]", 0},
    {"{\"BS\":[\"AA==\"]}", "[\"AA==\"]", 0},
    {"", NULL, DDBJSON_ESYNTAX},
    {"\"abc\"", NULL, DDBJSON_ESYNTAX},
    {"{}", NULL, DDBJSON_ESYNTAX},
    {"{\"S\":\"a\",\"N\":\"1\"}", NULL, DDBJSON_ESYNTAX},
    {"{\"X\":\"a\"}", NULL, DDBJSON_ESYNTAX},
    {"{\"S\":1}", NULL, DDBJSON_ESYNTAX},
    {"{\"N\":\"abc\"}", NULL, DDBJSON_ESYNTAX},
    {"{\"N\":\"1e\"}", NULL, DDBJSON_ESYNTAX},
    {"{\"N\":12}", NULL, DDBJSON_ESYNTAX},
    {"{\"BOOL\":\"true\"}", NULL, DDBJSON_ESYNTAX},
    {"{\"M\":[]}", NULL, DDBJSON_ESYNTAX},
    {"{\"L\":{}}", NULL, DDBJSON_ESYNTAX},
    {"{\"M\":{\"a\":\"plain\"}}", NULL, DDBJSON_ESYNTAX},
    {"{\"NS\":[\"1\",\"x\"]}", NULL, DDBJSON_ESYNTAX},
    {"{\"SS\":[1]}", NULL, DDBJSON_ESYNTAX},
    {NULL, NULL, 0}};

static const struct conv_case item_to_json[] = {
    {"{\"id\":{\"S\":\"a\"},\"t\":{\"N\":\"21.50\"},\"p\":{\"M\":{\"x\":{\"BOOL\":true}}}}", "{\"id\":\"a\",\"t\":21.50,\"p\":{\"x\":true}}", 0},
    {"{}", "{}", 0},
    {"{\"S\":\"a\"}", NULL, DDBJSON_ESYNTAX},   /* an item's values are typed values */
    {"[]", NULL, DDBJSON_ENOTOBJ},
    {NULL, NULL, 0}};

static const struct { const char *s; int is; } numbers[] = {
    {"0", 1}, {"-12", 1}, {"+12", 1}, {"1.5", 1}, {".5", 1}, {"5.", 1}, {"1e10", 1}, {"1.5E-3", 1},
    {"1699999999999", 1}, {"", 0}, {".", 0}, {"-", 0}, {"abc", 0}, {"12a", 0}, {"1e", 0}, {"1e+", 0},
    {"0x10", 0}, {"inf", 0}, {"nan", 0}, {" 1", 0}, {"1 ", 0}, {"1..2", 0}, {NULL, 0}};

/* Nesting: as deep as allowed converts, one more level is refused (and
 * a deep payload cannot exhaust the stack). */
static void
depth(void)
{
	buf in = BUF_ZERO, out = BUF_ZERO;
	for (int i = 0; i < DDBJSON_MAX_DEPTH; i++)
		buf_addc(&in, '[');
	for (int i = 0; i < DDBJSON_MAX_DEPTH; i++)
		buf_addc(&in, ']');
	ok(ddbjson_from_json(&out, in.data, in.len) == DDBJSON_OK, "%d nested arrays convert", DDBJSON_MAX_DEPTH);
	buf back = BUF_ZERO;
	ok(ddbjson_to_json(&back, out.data, out.len) == DDBJSON_OK && strcmp(back.data, in.data) == 0,
	    "and convert back to the same text");
	buf_reset(&in);
	buf_reset(&out);
	for (int i = 0; i < 100000; i++)
		buf_addc(&in, '[');
	ok(ddbjson_from_json(&out, in.data, in.len) == DDBJSON_EDEPTH && out.len == 0, "100,000 nested arrays: refused as too deep");
	buf_free(&in);
	buf_free(&out);
	buf_free(&back);
}

/* JSON → DynamoDB → JSON gives the same text for compact JSON. */
static void
round_trip(void)
{
	static const char *docs[] = {"{\"a\":1,\"b\":[true,false,null,\"x\",{\"c\":-1.25e-7}],\"d\":{}}",
	    "[\"tab\\t\",123456789012345678901234567890]", "\"\\\\\"", NULL};
	for (int i = 0; docs[i]; i++) {
		buf d = BUF_ZERO, back = BUF_ZERO;
		int e1 = ddbjson_from_json(&d, docs[i], strlen(docs[i]));
		int e2 = ddbjson_to_json(&back, d.data, d.len);
		ok(e1 == 0 && e2 == 0 && strcmp(back.data, docs[i]) == 0, "round trip of %s (%s)", docs[i],
		    back.data ? back.data : "");
		buf_free(&d);
		buf_free(&back);
	}
}

int
main(void)
{
	run("ddbjson_from_json", ddbjson_from_json, from_json);
	run("ddbjson_item_from_json", ddbjson_item_from_json, item_from_json);
	run("ddbjson_to_json", ddbjson_to_json, to_json);
	run("ddbjson_item_to_json", ddbjson_item_to_json, item_to_json);
	for (int i = 0; numbers[i].s; i++)
		ok(ddbjson_is_number(numbers[i].s, strlen(numbers[i].s)) == numbers[i].is, "ddbjson_is_number(\"%s\") is %d",
		    numbers[i].s, numbers[i].is);
	depth();
	round_trip();
	return done_testing();
}
