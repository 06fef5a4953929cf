/* rulecheck: `iotrules check PATH...`, the rule files checked offline
 * exactly as the pipeline loads them (docs/rules.md).
 *
 * Each PATH is a rule file or a rules directory (its rule files as
 * rules_dir_list gives them: *.json, name order).  Every file goes
 * through ruleset_add_file into one ruleset, so a rule name used twice
 * anywhere in what is checked is refused as evaluate refuses it (the
 * later file); a file named twice (a directory and one of its files)
 * is checked once.  The rules context (rules_set_context: MQTT version,
 * destinations) is the caller's to set first. */
#ifndef IOTRULES_RULECHECK_H
#define IOTRULES_RULECHECK_H

#include <stdio.h>

/* Checks paths[0..npaths) and writes one line per rule file to out:
 *   OK <file> (<form>: <rule name>[, <rule name>...])
 *   ERROR <file>: <reason>
 * (form: a RULE_FORM_* of rules.h; a directory that cannot be read is
 * one ERROR line naming it; an empty one, "OK <dir>: no rule file").
 * Warnings go to the log (stderr).  Returns 0 when every file is
 * accepted, 1 when some is refused. */
int rulecheck_run(int npaths, char **paths, FILE *out);

#endif
