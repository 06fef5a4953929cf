#include "evaluate/lib/rulecheck.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "evaluate/lib/rules.h"

/* One file into rs; its line on out.  0 accepted, 1 refused. */
static int
check_file(ruleset *rs, const char *path, FILE *out)
{
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
	int bad = 0;
	for (int i = 0; i < npaths; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			/* A missing file says so as a rule file would ("cannot read"). */
			bad |= check_file(rs, paths[i], out);
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
			bad |= check_file(rs, files[k], out);
		rules_dir_list_free(files, n);
	}
	ruleset_free(rs);
	return bad;
}
