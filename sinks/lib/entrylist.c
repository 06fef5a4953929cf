#include "sinks/lib/entrylist.h"

void
entrylist_add(buf *out, sink_job **jobs, int n)
{
	buf_addc(out, '[');
	for (int i = 0; i < n; i++) {
		if (i)
			buf_addc(out, ',');
		buf_add(out, jobs[i]->entry.data, jobs[i]->entry.len);
	}
	buf_addc(out, ']');
}
