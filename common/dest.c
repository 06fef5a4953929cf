#include "common/dest.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"

static const char *const status_names[] = {"ENABLED", "IN_PROGRESS", "DISABLED", "ERROR"};

const char *
dest_status_name(dest_status s)
{
	return (unsigned)s < 4 ? status_names[s] : "?";
}

static char *
read_text(const char *path, char *err, size_t cap)
{
	buf b = BUF_ZERO;
	if (buf_read_file(&b, path, 16u << 20) < 0) {
		snprintf(err, cap, "%s: cannot read: %s", path, strerror(errno));
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

static cJSON *
parse_config(const char *path, char *err, size_t cap)
{
	char *text = read_text(path, err, cap);
	if (text == NULL)
		return NULL;
	cJSON *root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(root)) {
		snprintf(err, cap, "%s: not a JSON object", path);
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static char *
xstrdup(const char *s)
{
	char *r = strdup(s);
	if (r == NULL)
		abort();   /* as buf does: out of memory is not recoverable here */
	return r;
}

static char *
resolve(const char *config_path, const char *p)
{
	if (p[0] == '/')
		return xstrdup(p);
	const char *slash = strrchr(config_path, '/');
	buf b = BUF_ZERO;
	if (slash)
		buf_printf(&b, "%.*s/%s", (int)(slash - config_path), config_path, p);
	else
		buf_adds(&b, p);
	return b.data;
}

/* One entry into d; 0, or -1 with "key: reason" in why. */
static int
read_entry(const char *config_path, const cJSON *e, dest *d, char *why, size_t cap)
{
	if (!cJSON_IsObject(e))
		return snprintf(why, cap, "must be an object"), -1;
	const cJSON *arn = cJSON_GetObjectItemCaseSensitive(e, "arn");
	if (!cJSON_IsString(arn) || arn->valuestring[0] == 0)
		return snprintf(why, cap, "\"arn\" must be a non-empty string"), -1;
	d->arn = xstrdup(arn->valuestring);
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(e, "status");
	int found = 0;
	for (int i = 0; i < 4 && cJSON_IsString(st); i++)
		if (strcmp(st->valuestring, status_names[i]) == 0) {
			d->status = (dest_status)i;
			found = 1;
		}
	if (!found)
		return snprintf(why, cap, "\"status\" must be ENABLED, IN_PROGRESS, DISABLED or ERROR"), -1;
	const cJSON *http = cJSON_GetObjectItemCaseSensitive(e, "httpUrlConfiguration");
	const cJSON *vpc = cJSON_GetObjectItemCaseSensitive(e, "vpcConfiguration");
	if ((http != NULL) == (vpc != NULL))
		return snprintf(why, cap, "needs exactly one of \"httpUrlConfiguration\" and \"vpcConfiguration\""), -1;
	const cJSON *ah = cJSON_GetObjectItemCaseSensitive(e, "allow_http");
	if (ah != NULL && !cJSON_IsBool(ah))
		return snprintf(why, cap, "\"allow_http\" must be true or false"), -1;
	d->allow_http = cJSON_IsTrue(ah);
	const cJSON *ca = cJSON_GetObjectItemCaseSensitive(e, "ca_file");
	if (ca != NULL) {
		if (!cJSON_IsString(ca) || ca->valuestring[0] == 0)
			return snprintf(why, cap, "\"ca_file\" must be a non-empty string"), -1;
		d->ca_file = resolve(config_path, ca->valuestring);
		if (access(d->ca_file, R_OK) != 0)
			return snprintf(why, cap, "\"ca_file\": cannot read %s: %s", d->ca_file, strerror(errno)), -1;
	}
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(e, "netns");
	if (http) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(http, "confirmationUrl");
		if (!cJSON_IsString(u))
			return snprintf(why, cap, "httpUrlConfiguration.confirmationUrl must be a string"), -1;
		const char *s = u->valuestring;
		int https = strncmp(s, "https://", 8) == 0, plain = strncmp(s, "http://", 7) == 0;
		if ((!https && !plain) || s[https ? 8 : 7] == 0 || s[https ? 8 : 7] == '/')
			return snprintf(why, cap, "httpUrlConfiguration.confirmationUrl must be an https:// URL with a host"), -1;
		if (plain && !d->allow_http)
			return snprintf(why, cap, "httpUrlConfiguration.confirmationUrl is plain http: set \"allow_http\": true "
			    "to allow it"), -1;
		if (strlen(s) > 2000)
			return snprintf(why, cap, "httpUrlConfiguration.confirmationUrl is longer than 2000 characters"), -1;
		if (ns != NULL)
			return snprintf(why, cap, "\"netns\" belongs to a vpcConfiguration entry"), -1;
		d->confirmation_url = xstrdup(s);
		return 0;
	}
	d->vpc = 1;
	if (!cJSON_IsObject(vpc))
		return snprintf(why, cap, "\"vpcConfiguration\" must be an object"), -1;
	/* A namespace is a file name under /run/netns (ip netns). */
	if (!cJSON_IsString(ns) || ns->valuestring[0] == 0 || strchr(ns->valuestring, '/') ||
	    strcmp(ns->valuestring, ".") == 0 || strcmp(ns->valuestring, "..") == 0 || strlen(ns->valuestring) > 255)
		return snprintf(why, cap, "\"netns\" must name a network namespace (as ip netns does)"), -1;
	d->netns = xstrdup(ns->valuestring);
	return 0;
}

int
dest_load(const char *config_path, dest_list *out, char *err, size_t cap)
{
	*out = (dest_list)DEST_LIST_ZERO;
	cJSON *root = parse_config(config_path, err, cap);
	if (root == NULL)
		return -1;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "destinations");
	if (a == NULL || cJSON_IsNull(a)) {
		cJSON_Delete(root);
		return 0;
	}
	if (!cJSON_IsArray(a)) {
		snprintf(err, cap, "%s: \"destinations\" must be a list", config_path);
		cJSON_Delete(root);
		return -1;
	}
	int n = cJSON_GetArraySize(a), i = 0;
	dest_list l = {calloc((size_t)n + 1, sizeof(dest)), 0};
	if (l.d == NULL)
		abort();
	char why[600];
	for (const cJSON *e = a->child; e; e = e->next, i++) {
		dest *d = &l.d[l.n++];
		int bad = read_entry(config_path, e, d, why, sizeof(why)) < 0;
		if (!bad && dest_find(&(dest_list){l.d, l.n - 1}, d->arn)) {
			snprintf(why, sizeof(why), "\"arn\" is also the arn of an earlier entry");
			bad = 1;
		}
		if (bad) {
			snprintf(err, cap, "%s: destinations[%d]%s%s%s: %s", config_path, i, d->arn ? " (" : "",
			    d->arn ? d->arn : "", d->arn ? ")" : "", why);
			dest_free(&l);
			cJSON_Delete(root);
			return -1;
		}
	}
	cJSON_Delete(root);
	*out = l;
	return 0;
}

int
dest_netns(const dest_list *l, const char **netns, char *err, size_t cap)
{
	*netns = NULL;
	for (int i = 0; i < l->n; i++) {
		const dest *d = &l->d[i];
		if (!d->vpc || d->netns == NULL)
			continue;
		if (*netns && strcmp(*netns, d->netns) != 0) {
			snprintf(err, cap, "destinations: %s is in network namespace %s and another in %s; the kafka "
			    "sink runs in one namespace, so every VPC destination must name the same",
			    d->arn, d->netns, *netns);
			return -1;
		}
		*netns = d->netns;
	}
	return 0;
}

void
dest_free(dest_list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->d[i].arn);
		free(l->d[i].confirmation_url);
		free(l->d[i].netns);
		free(l->d[i].ca_file);
	}
	free(l->d);
	*l = (dest_list)DEST_LIST_ZERO;
}

const dest *
dest_find(const dest_list *l, const char *arn)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->d[i].arn, arn) == 0)
			return &l->d[i];
	return NULL;
}

int
dest_url_covers(const char *prefix, const char *url)
{
	size_t k = strlen(prefix);
	if (strncmp(prefix, url, k) != 0)
		return 0;
	const char *auth = strstr(prefix, "://");
	if (auth && strchr(auth + 3, '/') == NULL)   /* scheme://host[:port] only */
		return url[k] == 0 || url[k] == '/' || url[k] == '?' || url[k] == '#';
	return 1;
}

const dest *
dest_for_url(const dest_list *l, const char *url)
{
	const dest *best[2] = {NULL, NULL};   /* ENABLED, other */
	for (int i = 0; i < l->n; i++) {
		const dest *d = &l->d[i];
		if (d->confirmation_url == NULL || !dest_url_covers(d->confirmation_url, url))
			continue;
		int k = d->status != DEST_ENABLED;
		if (best[k] == NULL || strlen(d->confirmation_url) > strlen(best[k]->confirmation_url))
			best[k] = d;
	}
	return best[0] ? best[0] : best[1];
}

/* ---- the confirmation exchange -------------------------------------------- */

static size_t
collect(char *p, size_t size, size_t n, void *arg)
{
	buf *b = arg;
	if (b->len + size * n > 65536)
		return 0;   /* a confirmation answer is small; stop a runaway one */
	buf_add(b, p, size * n);
	return size * n;
}

/* Sets the entry's status to ENABLED in the config file: written to a
 * temporary file beside it and renamed over it, so a reader never sees
 * half a file. */
static int
set_enabled(const char *config_path, const char *arn, char *err, size_t cap)
{
	cJSON *root = parse_config(config_path, err, cap);
	if (root == NULL)
		return -1;
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "destinations")) {
		cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "arn");
		if (cJSON_IsString(a) && strcmp(a->valuestring, arn) == 0)
			break;
	}
	char *text = NULL;
	if (e == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(e, "status", cJSON_CreateString("ENABLED")) ||
	    (text = cJSON_Print(root)) == NULL) {
		snprintf(err, cap, "%s: cannot update the entry of %s", config_path, arn);
		cJSON_Delete(root);
		return -1;
	}
	cJSON_Delete(root);
	buf tmp = BUF_ZERO;
	buf_printf(&tmp, "%s.tmp.%d", config_path, (int)getpid());
	FILE *f = fopen(tmp.data, "w");
	int bad = f == NULL || fputs(text, f) < 0 || fputc('\n', f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
	if (f && fclose(f) != 0)
		bad = 1;
	if (bad || rename(tmp.data, config_path) != 0) {
		snprintf(err, cap, "%s: cannot write: %s", config_path, strerror(errno));
		unlink(tmp.data);
		bad = 1;
	}
	free(text);
	buf_free(&tmp);
	return bad ? -1 : 0;
}

/* 1 when the answer carries the token: the bare token, or JSON with
 * "confirmationToken". */
static int
echoes(const buf *answer, const char *token)
{
	cJSON *j = cJSON_ParseWithLength(answer->data ? answer->data : "", answer->len);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "confirmationToken");
	int yes = cJSON_IsString(t) && strcmp(t->valuestring, token) == 0;
	cJSON_Delete(j);
	if (yes || answer->data == NULL)
		return yes;
	size_t k = answer->len;
	while (k > 0 && (answer->data[k - 1] == '\n' || answer->data[k - 1] == '\r' || answer->data[k - 1] == ' '))
		k--;
	return k == strlen(token) && memcmp(answer->data, token, k) == 0;
}

int
dest_confirm(const char *config_path, const char *arn, FILE *out, char *err, size_t cap)
{
	dest_list l;
	if (dest_load(config_path, &l, err, cap) < 0)
		return -1;
	const dest *d = dest_find(&l, arn);
	if (d == NULL || d->confirmation_url == NULL) {
		snprintf(err, cap, "%s: %s %s", config_path, arn,
		    d ? "is a VPC destination: only HTTP destinations are confirmed" : "is not in \"destinations\"");
		dest_free(&l);
		return -1;
	}
	unsigned char raw[32];
	char token[65];
	arc4random_buf(raw, sizeof(raw));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(token + 2 * i, 3, "%02x", raw[i]);
	const char *u = d->confirmation_url;
	buf url = BUF_ZERO, body = BUF_ZERO, hdr = BUF_ZERO, answer = BUF_ZERO, enable = BUF_ZERO;
	buf_printf(&url, "%s%s?confirmationToken=%s", u, u[strlen(u) - 1] == '/' ? "" : "/", token);
	/* AWS's enableUrl is an AWS endpoint; ours names what to do instead. */
	buf_printf(&enable, "iotrules:destination/confirm?arn=%s&confirmationToken=%s", arn, token);
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "arn", arn);
	cJSON_AddStringToObject(j, "confirmationToken", token);
	cJSON_AddStringToObject(j, "enableUrl", enable.data);
	cJSON_AddStringToObject(j, "messageType", "DestinationConfirmation");
	char *text = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	buf_printf(&hdr, "x-amz-rules-engine-destination-arn: %s", arn);
	struct curl_slist *h = NULL, *h2 = NULL;
	h = curl_slist_append(h, "x-amz-rules-engine-message-type: DestinationConfirmation");
	if (h)
		h2 = curl_slist_append(h, hdr.data);
	if (h2)
		h2 = curl_slist_append(h2, "Content-Type: application/json");
	CURL *c = curl_easy_init();
	const char *ca = d->ca_file ? d->ca_file : getenv("AWS_CA_BUNDLE");
	int rc = -1;
	long status = 0;
	char ebuf[CURL_ERROR_SIZE] = "";
	if (c == NULL || text == NULL || h2 == NULL) {
		snprintf(err, cap, "out of memory");
		goto out;
	}
	h = h2;
	curl_easy_setopt(c, CURLOPT_URL, url.data);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, d->allow_http ? "https,http" : "https");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "iotrules");
	if (ca && *ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	fprintf(out, "POST %s (DestinationConfirmation for %s)\n", url.data, arn);
	CURLcode cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		snprintf(err, cap, "%s: %s", url.data, ebuf[0] ? ebuf : curl_easy_strerror(cc));
		goto out;
	}
	if (status < 200 || status > 299 || !echoes(&answer, token)) {
		snprintf(err, cap, "%s answered %ld without the confirmation token (%.200s); %s stays %s", u, status,
		    answer.data ? answer.data : "", arn, dest_status_name(d->status));
		rc = 1;
		goto out;
	}
	if (set_enabled(config_path, arn, err, cap) < 0)
		goto out;
	fprintf(out, "%s confirmed by %s; status set to ENABLED in %s\n", arn, u, config_path);
	rc = 0;
out:
	if (c)
		curl_easy_cleanup(c);
	curl_slist_free_all(h);
	free(text);
	buf_free(&url);
	buf_free(&body);
	buf_free(&hdr);
	buf_free(&answer);
	buf_free(&enable);
	dest_free(&l);
	return rc;
}
