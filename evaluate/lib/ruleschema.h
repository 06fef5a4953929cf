/* ruleschema: what AWS's topic-rule schema lets an action hold, and the
 * check of an action's parameters against it (docs/rules.md).
 *
 * The shapes are tables generated from AWS's service model
 * (evaluate/lib/ruleschema_tab.c, by scripts/ruleschema-gen): every
 * member this build's sinks read, and nothing else.  A parameter that is
 * not there is a key the build cannot honour, so the loader refuses it
 * rather than dropping it.
 *
 * The check also converts CloudFormation's spelling (AWS::IoT::TopicRule
 * writes "RoleArn" for the API's "roleArn": the API name with its first
 * letter upper-cased) to the API's, in place, so the rest of the loader
 * and the sinks see one spelling.  Everything here is static and
 * read-only: no allocation beyond the renamed keys, safe from any
 * thread. */
#ifndef IOTRULES_RULESCHEMA_H
#define IOTRULES_RULESCHEMA_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct rs_member rs_member;

/* One shape of the schema.  type: 's' string, 'b' boolean, 'i' integer,
 * 'l' list, 'S' structure, 'm' map (string keys, taken as written), 'x'
 * anything (its caller checks it).
 * min/max bound a string's length in characters, a list's length or an
 * integer's value (-1: no bound). */
typedef struct rs_shape {
	char type;
	long min, max;
	const char *enums;          /* allowed values, space-separated; NULL: any */
	const rs_member *members;   /* 'S': ends with a NULL name */
	const struct rs_shape *elem; /* 'l': element, 'm': value */
} rs_shape;

struct rs_member {
	const char *name;           /* the API's spelling: "roleArn" */
	const rs_shape *shape;
	int required;
};

typedef struct rs_action {
	const char *key;            /* "dynamoDBv2" */
	const rs_shape *shape;
} rs_action;

/* Every action type, ending with a NULL key (ruleschema_tab.c). */
extern const rs_action ruleschema_actions[];

/* The shape of an action type's parameters (exact API key), or NULL. */
const rs_shape *ruleschema_action(const char *key);

/* Checks params (the object under an action's key) against shape: every
 * key known (cfn: written in CloudFormation's spelling, then renamed to
 * the API's), each value of its type, in its bounds and among its enum
 * (a value holding a ${} template is checked when it is resolved), no key
 * twice, nested required members present.  The action's own required
 * members are not checked here (rules.c does, with roleArn a warning).
 * cfn also takes "true"/"false" for a boolean and digits for an integer,
 * and a number for a string, as CloudFormation does, and refuses an
 * intrinsic function ({"Ref": ...}, {"Fn::Sub": ...}), which is never
 * resolved here.  path is the key path of params in the file
 * ("actions[0].republish"; "" for the file's top level).  0, or -1 with "PATH: cause" in err. */
int ruleschema_check(cJSON *params, const rs_shape *shape, int cfn, const char *path, char *err, size_t errcap);

/* The name among names[0..n) that key was most likely meant to be (same
 * letters in another case, or at most two edits away), or NULL.  With
 * cfn, names are compared in CloudFormation's spelling. */
const char *ruleschema_closest(const char *key, const char *const *names, int n, int cfn);

/* The intrinsic function node is, when it is one ({"Ref": ...} or
 * {"Fn::...": ...}, alone): its name ("Fn::Sub"); else NULL. */
const char *ruleschema_intrinsic(const cJSON *node);

/* name as a file spells it into out: as is, or (cfn) in CloudFormation's
 * spelling, its first letter upper-cased. */
void ruleschema_spell(const char *name, int cfn, char *out, size_t cap);

/* Renames node's key to name (cJSON owns the key). 0, -1 out of memory. */
int ruleschema_rename(cJSON *node, const char *name);

#endif
