/* destconfirm: test tool — runs the destination confirmation exchange
 * (common/dest.h dest_confirm) as `iotrules destination confirm ARN`
 * will, for the tests until the control command has it.
 *
 *   destconfirm CONFIG ARN
 *
 * Exits 0 confirmed (status set to ENABLED in CONFIG), 1 the endpoint did
 * not echo the token, 111 an error (its reason on stderr), 100 usage. */
#include <stdio.h>

#include "common/dest.h"

int
main(int argc, char **argv)
{
	char err[1024];
	if (argc != 3) {
		fprintf(stderr, "usage: destconfirm CONFIG ARN\n");
		return 100;
	}
	int rc = dest_confirm(argv[1], argv[2], stdout, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "destconfirm: %s\n", err);
	return rc == 0 ? 0 : rc == 1 ? 1 : 111;
}
