/* dest: topic rule destinations, the "destinations" list of the pipeline
 * config (the JSON file common/config reads; this module reads only that
 * key, with cJSON, on its own).  Entries are AWS-shaped
 * (CreateTopicRuleDestination, ACTIONS.md §2.8 and §3):
 *
 *   {"arn": "arn:aws:iot:us-east-1:123456789012:ruledestination/http/x",
 *    "status": "ENABLED" | "IN_PROGRESS" | "DISABLED" | "ERROR",
 *    "httpUrlConfiguration": {"confirmationUrl": "https://host/base"},
 *    "ca_file": "certs/ca.pem",      ours: a private CA for this endpoint
 *    "allow_http": true}             ours: plain http:// allowed
 *
 *   {"arn": "...", "status": "ENABLED",
 *    "vpcConfiguration": {"subnetIds": [...], "vpcId": "...", ...},
 *    "netns": "iot-vpc"}             ours: the Linux network namespace the
 *                                    sinks using it run in
 *
 * An entry has exactly one of httpUrlConfiguration and vpcConfiguration;
 * arn and status are required, arns are unique.  Relative ca_file paths
 * are taken relative to the config file's directory.  AWS allows only
 * https on ports 443/8443 with a public CA; we allow any port, a private
 * CA (ca_file) and plain http when allow_http is true.
 *
 * Which destination covers a URL (dest_for_url): one whose confirmationUrl
 * is a prefix of the URL, as AWS requires of an action's url and
 * confirmationUrl; a confirmationUrl that is only scheme://host[:port]
 * must be followed in the URL by '/', '?', '#' or the end, so
 * "https://a.example" does not cover "https://a.example.evil.net/".
 *
 * Ownership: a dest_list owns all its strings; dest_free releases them.
 * Errors: -1 with "FILE: destinations[i] (ARN): key: reason" in err. */
#ifndef IOTRULES_DEST_H
#define IOTRULES_DEST_H

#include <stddef.h>
#include <stdio.h>

typedef enum dest_status {
	DEST_ENABLED = 0,
	DEST_IN_PROGRESS,   /* confirmation pending */
	DEST_DISABLED,      /* confirmed, paused */
	DEST_ERROR,         /* confirmation failed or timed out */
} dest_status;

typedef struct dest {
	char *arn;
	dest_status status;
	char *confirmation_url;   /* httpUrlConfiguration; NULL for a VPC entry */
	char *netns;              /* VPC entry: namespace name; else NULL */
	char *ca_file;            /* absolute or config-relative made absolute; NULL */
	int allow_http;
	int vpc;                  /* 1: a vpcConfiguration entry */
} dest;

typedef struct dest_list {
	dest *d;
	int n;
} dest_list;

#define DEST_LIST_ZERO {NULL, 0}

/* Reads the "destinations" of the config file at config_path into out
 * (which the caller later passes to dest_free, on success only).  A config
 * without the key (or with null) gives an empty list.  0, or -1 with err
 * set (the file, the entry and the key). */
int dest_load(const char *config_path, dest_list *out, char *err, size_t cap);
void dest_free(dest_list *l);

/* The network namespace the VPC destinations of l name (*netns NULL when
 * none does).  A process is in one namespace, so they must all name the
 * same: -1 with err naming two that differ. */
int dest_netns(const dest_list *l, const char **netns, char *err, size_t cap);

/* The entry named arn, or NULL. */
const dest *dest_find(const dest_list *l, const char *arn);

/* The destination covering url: the longest confirmationUrl prefix among
 * ENABLED entries, else the longest among the others (so a caller can say
 * "covered by X, which is DISABLED"); NULL when none covers it. */
const dest *dest_for_url(const dest_list *l, const char *url);

/* "ENABLED", "IN_PROGRESS", ... */
const char *dest_status_name(dest_status s);

/* 1 if prefix (a confirmationUrl) covers url (see above), else 0. */
int dest_url_covers(const char *prefix, const char *url);

/* `iotrules destination confirm ARN`: AWS's confirmation exchange against
 * the destination's endpoint.  Sends POST {confirmationUrl}/?confirmationToken=
 * TOKEN with x-amz-rules-engine-message-type: DestinationConfirmation,
 * x-amz-rules-engine-destination-arn: ARN, Content-Type: application/json
 * and the body {"arn", "confirmationToken", "enableUrl", "messageType":
 * "DestinationConfirmation"} (TLS and plain http as for deliveries: the
 * system CAs, AWS_CA_BUNDLE or the entry's ca_file).  AWS's endpoint
 * owner confirms by calling enableUrl; locally there is no AWS to call,
 * so the endpoint confirms by answering the request with 2xx and a body
 * that carries the token (the bare token, or JSON with
 * "confirmationToken").  Then the entry's status is set to ENABLED in the
 * config file (rewritten whole, atomically, by cJSON: its formatting is
 * not kept) and the sinks pick the change up (they re-read the config).
 * Progress goes to out.  0 confirmed; 1 the endpoint answered but did not
 * echo the token (err says what it answered; status unchanged); -1 error
 * (no such destination, not an HTTP one, request failed; err says why). */
int dest_confirm(const char *config_path, const char *arn, FILE *out, char *err, size_t cap);

#endif
