#include "evaluate/lib/rulecheck.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/xalloc.h"
#include "evaluate/lib/rules.h"

/* The files checked so far (device and inode): a file named twice
 * (`check rules/ rules/a.json`) is checked once, not refused as its own
 * duplicate. */
typedef struct seen {
	struct stat *st;
	int n;
} seen;

static int
seen_before(seen *s, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return 0;
	for (int i = 0; i < s->n; i++)
		if (s->st[i].st_dev == st.st_dev && s->st[i].st_ino == st.st_ino)
			return 1;
	s->st = xmust(realloc(s->st, sizeof(struct stat) * (size_t)(s->n + 1)));
	s->st[s->n++] = st;
	return 0;
}

/* One file into rs; its line on out.  0 accepted (or checked before), 1
 * refused. */
static int
check_file(ruleset *rs, seen *sn, const char *path, FILE *out)
{
	if (seen_before(sn, path))
		return 0;
	char err[1024];
	const char *form = NULL;
	int k = ruleset_add_file(rs, path, &form, err, sizeof(err));
	if (k < 0) {
		fprintf(out, "ERROR %s: %s\n", path, err);
		return 1;
	}
	fprintf(out, "OK %s (%s: ", path, form);
	for (int i = rs->n - k; i < rs->n; i++)
		fprintf(out, "%s%s", i > rs->n - k ? ", " : "", rs->rules[i]->name);
	fprintf(out, ")\n");
	return 0;
}

int
rulecheck_run(int npaths, char **paths, FILE *out)
{
	ruleset *rs = ruleset_new();
	seen sn = {NULL, 0};
	int bad = 0;
	for (int i = 0; i < npaths; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			/* A missing file says so as a rule file would ("cannot read"). */
			bad |= check_file(rs, &sn, paths[i], out);
			continue;
		}
		char **files, err[600];
		int n;
		if (rules_dir_list(paths[i], &files, &n, err, sizeof(err)) < 0) {
			fprintf(out, "ERROR %s: %s\n", paths[i], err);
			bad = 1;
			continue;
		}
		if (n == 0)
			fprintf(out, "OK %s: no rule file (*.json)\n", paths[i]);
		for (int k = 0; k < n; k++)
			bad |= check_file(rs, &sn, files[k], out);
		rules_dir_list_free(files, n);
	}
	ruleset_free(rs);
	free(sn.st);
	return bad;
}
