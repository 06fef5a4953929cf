/* ddbjson: JSON and DynamoDB's JSON form of values, both ways.
 *
 * DynamoDB's low-level API writes every value as a one-member object that
 * names its type: {"S":"text"}, {"N":"12.5"}, {"BOOL":true},
 * {"NULL":true}, {"M":{name: value, ...}}, {"L":[value, ...]},
 * {"B":"<base64>"} and the sets {"SS":[...]}, {"NS":[...]}, {"BS":[...]}.
 * An item is a map of attribute names to such values:
 * {"id":{"S":"a"},"temp":{"N":"21"}}.
 *
 * From JSON (the dynamoDB and dynamoDBv2 actions, ACTIONS.md §2.4-2.5):
 * string → S, number → N with the number's own text (never rounded
 * through a double: DynamoDB keeps 38 digits), true/false → BOOL, null →
 * NULL, object → M, array → L.  Strings and names are copied as written
 * (escapes included), after checking they are JSON strings of valid
 * UTF-8: text that is not JSON is refused, and the caller decides (the
 * dynamoDB action stores it as B).
 *
 * To JSON (get_dynamodb, SQL.md): the reverse; N gives a JSON number of
 * the same value ("+5" → 5, ".5" → 0.5), B its base64 text, SS an array
 * of strings, NS of numbers, BS of base64 strings.
 *
 * Every function appends to out and returns DDBJSON_OK, or an error with
 * out as it was.  Pure: no state, any thread. */
#ifndef IOTRULES_DDBJSON_H
#define IOTRULES_DDBJSON_H

#include <stddef.h>

#include "common/buf.h"

typedef enum ddbjson_err {
	DDBJSON_OK = 0,
	DDBJSON_ESYNTAX = -1,  /* not JSON (from), not DynamoDB JSON (to) */
	DDBJSON_ENOTOBJ = -2,  /* an item must be an object */
	DDBJSON_EDEPTH = -3,   /* nested deeper than DDBJSON_MAX_DEPTH */
} ddbjson_err;

/* Deepest nesting either way; DynamoDB itself stops at 32 and says so. */
#define DDBJSON_MAX_DEPTH 64

/* One JSON value (json, n bytes) as one DynamoDB value. */
int ddbjson_from_json(buf *out, const char *json, size_t n);

/* A JSON object as an item, one attribute per member; DDBJSON_ENOTOBJ
 * for JSON that is not an object. */
int ddbjson_item_from_json(buf *out, const char *json, size_t n);

/* One DynamoDB value as JSON. */
int ddbjson_to_json(buf *out, const char *ddb, size_t n);

/* An item (a map of names to DynamoDB values) as a JSON object. */
int ddbjson_item_to_json(buf *out, const char *ddb, size_t n);

/* 1 when s (n bytes) is number text DynamoDB takes for N:
 * [+-]digits[.digits][(e|E)[+-]digits], digits on at least one side of
 * the point; 0 otherwise. */
int ddbjson_is_number(const char *s, size_t n);

/* The error's text ("not JSON", ...). */
const char *ddbjson_strerror(int err);

#endif
