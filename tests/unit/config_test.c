/* Unit tests of config (the pipeline config file: defaults, every
 * problem reported at once with its line, did-you-mean hints) and of
 * opt_init (--opt=value). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/dest.h"
#include "common/opt.h"
#include "tests/unit/tap.h"

static char dir[] = "/tmp/iotrules-config-XXXXXX";
static char path[256];
static char err[8192];

/* Writes text as the config file and loads it. */
static int
load(const char *text, config *c)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -2;
	fputs(text, f);
	fclose(f);
	err[0] = 0;
	return config_load(path, c, err, sizeof(err));
}

/* The config is refused and err holds want (after the file's path). */
static void
refused(const char *text, const char *want, const char *name)
{
	config c;
	int rc = load(text, &c);
	int found = strstr(err, want) != NULL;
	ok(rc == -1 && found, "%s", name);
	if (!found)
		printf("#   err:  '%s'\n#   want: '%s'\n", err, want);
	if (rc == 0)
		config_free(&c);
}

static int
lines(const char *s)
{
	int n = s[0] != 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/config.json", dir);
	config c;

	ok(load("{}", &c) == 0, "an empty object is a config (every key has a default)");
	is_str(c.broker, "mqtt://127.0.0.1:1883", "default broker");
	is_str(c.metrics_listen, "127.0.0.1:9641", "default metrics_listen");
	ok(c.mqtt_version == 5 && c.tries == 3 && c.retry_s == 3600, "default mqtt_version, tries, retry_s");
	char want[300];
	snprintf(want, sizeof(want), "%s/rules", dir);
	is_str(c.rules, want, "rules is taken relative to the config's directory");
	config_free(&c);

	ok(load("{\"metrics_listen\": false, \"broker\": \"mqtts://h:8883\", \"share_group\": \"g\","
		"\"instances\": {\"ingest\": 2, \"sink-sqs\": 3}}", &c) == 0, "a full config loads: %s", err);
	ok(c.metrics_listen == NULL, "metrics_listen false: no endpoint");
	ok(config_instances(&c, "ingest") == 2 && config_instances(&c, "sink-sqs") == 3 &&
	    config_instances(&c, "evaluate") == 1, "instances");
	config_free(&c);

	refused("{\"brokr\": \"mqtt://h\"}", "unknown key \"brokr\" (did you mean \"broker\"?)",
	    "a misspelt key is an error with a did-you-mean hint");
	refused("{\"runDir\": \"x\"}", "unknown key \"runDir\" (did you mean \"run_dir\"?)",
	    "camelCase of a key: hint");
	refused("{\"zzzzzzzz\": 1}", "unknown key \"zzzzzzzz\" (the keys are listed",
	    "a key like no other: no hint, where the list is");
	refused("{\"tries\": \"three\"}", "\"tries\" must be an integer >= 1", "wrong type names the key");
	refused("{\"broker\": 7}", "\"broker\" must be a string", "broker not a string");
	refused("{\"broker\": \"http://h:80\"}", "\"broker\": \"http://h:80\" is not a broker URL", "bad broker URL");
	refused("{\"mqtt_version\": 4}", "\"mqtt_version\" must be 3 or 5", "mqtt_version 4");
	refused("{\"metrics_listen\": \"9641\"}", "is not HOST:PORT", "metrics_listen without a host");
	refused("{\"metrics_listen\": \"h:70000\"}", "is not HOST:PORT", "metrics_listen port out of range");
	refused("{\"metrics_listen\": true}", "must be \"HOST:PORT\" or false", "metrics_listen true");
	refused("{\"instances\": {\"evalute\": 2}}", "unknown stage \"evalute\" (did you mean \"evaluate\"?)",
	    "an unknown stage in instances");
	refused("{\"instances\": {\"sink-nosuch\": 2}}", "unknown stage \"sink-nosuch\"", "an unknown sink stage");
	refused("{\"instances\": {\"evaluate\": 65}}", "\"evaluate\" must be an integer from 0 to 64",
	    "instances out of range");
	refused("{\"instances\": {\"ingest\": 2}}", "ingest 2 needs \"share_group\"",
	    "two ingest instances without a share group (each would get every message)");
	refused("{\"share_group\": \"a/b\"}", "\"share_group\" must not contain", "a share group with a slash");
	refused("{\"password\": \"p\", \"password_file\": \"f\"}", "are exclusive", "password and password_file");
	refused("{\"assume_role\": 1}", "\"assume_role\" must be true or false", "assume_role not a boolean");
	refused("[1]", ":1: not a JSON object", "an array is not a config");
	refused("{\n\"broker\": \"x\",\n\"tries\": 3,,\n}", ":3: not valid JSON", "a syntax error gives its line");

	/* Every problem at once, in the file's order, each with its line. */
	const char *three = "{\n"
	    "  \"brokr\": \"mqtt://127.0.0.1:1883\",\n"
	    "  \"tries\": \"three\",\n"
	    "  \"broker\": \"htp://x\"\n"
	    "}\n";
	ok(load(three, &c) == -1 && lines(err) == 3, "three problems, three lines (%d)", lines(err));
	ok(strstr(err, "config.json:2: unknown key \"brokr\"") && strstr(err, "config.json:3: \"tries\"") &&
	    strstr(err, "config.json:4: \"broker\""), "each line names the file and the key's line");
	ok(strstr(err, ":2:") < strstr(err, ":3:") && strstr(err, ":3:") < strstr(err, ":4:"),
	    "in the file's order");

	/* config_check adds the destinations and the VPC namespace rule. */
	dest_list dl;
	const char *netns;
	FILE *f = fopen(path, "w");
	fputs("{\"destinations\": [{\"arn\": \"a1\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, "
	      "\"netns\": \"n1\"}, {\"arn\": \"a2\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, "
	      "\"netns\": \"n2\"}]}", f);
	fclose(f);
	ok(config_check(path, &c, &dl, &netns, err, sizeof(err)) == -1 && strstr(err, "must name the same"),
	    "config_check: two VPC destinations in different namespaces are refused");
	f = fopen(path, "w");
	fputs("{\"destinations\": [{\"arn\": \"a1\", \"status\": \"ENABLED\", \"vpcConfiguration\": {}, "
	      "\"netns\": \"n1\"}]}", f);
	fclose(f);
	ok(config_check(path, &c, &dl, &netns, err, sizeof(err)) == 0 && netns && strcmp(netns, "n1") == 0,
	    "config_check: the namespace of the VPC destinations");
	dest_free(&dl);
	config_free(&c);

	/* transport and stages (issue 13). */
	ok(load("{\"transport\": {\"amqp\": [\"amqp://a:5672\", \"amqp://u:p@b:5673/v\"], \"prefix\": \"x\"},\n"
	    " \"stages\": [\"evaluate\", \"sinks\"]}", &c) == 0 && c.amqp &&
	    strcmp(c.amqp, "amqp://a:5672 amqp://u:p@b:5673/v") == 0 && c.amqp_prefix && strcmp(c.amqp_prefix, "x") == 0 &&
	    config_runs(&c, "evaluate") && config_runs(&c, "sink-kafka") && !config_runs(&c, "ingest") &&
	    !config_runs(&c, "error-handler"), "transport: the AMQP URLs and prefix; stages: evaluate and every sink");
	config_free(&c);
	ok(load("{}", &c) == 0 && c.amqp == NULL && config_runs(&c, "ingest") && config_runs(&c, "sink-s3"),
	    "without transport and stages: NNG, every stage");
	config_free(&c);
	ok(load("{\"transport\": {\"amqp\": [\"amqps://a\"], \"cafile\": \"ca.pem\", \"certfile\": \"/c.pem\",\n"
	    " \"keyfile\": \"k.pem\"}}", &c) == 0 && c.amqp_cafile && strcmp(c.amqp_cafile + strlen(dir), "/ca.pem") == 0 &&
	    strcmp(c.amqp_certfile, "/c.pem") == 0 && strncmp(c.amqp_keyfile, dir, strlen(dir)) == 0,
	    "transport: amqps with its TLS files, relative to the config file");
	config_free(&c);
	refused("{\"transport\": {\"amqp\": [\"amqps://a\"], \"certfile\": \"c.pem\"}}",
	    "\"certfile\" and \"keyfile\" go together", "transport: a certfile without its keyfile");
	refused("{\"stages\": [\"ingest\"]}", "\"stages\" needs \"transport\"", "stages without transport");
	refused("{\"transport\": {\"amqp\": [\"http://x\"]}}", "\"transport\": \"amqp\" lists URLs",
	    "transport: a URL that is not amqp://");
	refused("{\"transport\": {\"amqp\": []}}", "\"transport\" must be an object", "transport: no URL");
	refused("{\"transport\": {\"amqp\": [\"amqp://a\"], \"tls\": 1}}", "unknown key \"tls\"",
	    "transport: an unknown key");
	refused("{\"transport\": {\"amqp\": [\"amqp://a\"]}, \"stages\": [\"evaluat\"]}",
	    "\"evaluat\" is not a stage", "stages: a name that is not a stage");

	/* opt_init: --opt=value becomes two arguments; after -- nothing. */
	char a0[] = "prog", a1[] = "--config=/x/y.json", a2[] = "status", a3[] = "--", a4[] = "--a=b";
	char *av[] = {a0, a1, a2, a3, a4, NULL};
	int ac = 5;
	char **argv = av;
	opt_init("prog", &ac, &argv);
	ok(ac == 6 && strcmp(argv[1], "--config") == 0 && strcmp(argv[2], "/x/y.json") == 0 &&
	    strcmp(argv[3], "status") == 0 && strcmp(argv[5], "--a=b") == 0 && argv[6] == NULL,
	    "opt_init splits --opt=value, and leaves what follows -- alone");

	unlink(path);
	rmdir(dir);
	return done_testing();
}
