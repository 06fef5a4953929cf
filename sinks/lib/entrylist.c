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

int
entrylist_take_distinct(sink_job **jobs, int *n, sink_job **group,
    int (*same)(const sink_job *a, const sink_job *b))
{
	int ng = 0, keep = 0;
	for (int i = 0; i < *n; i++) {
		int clash = 0;
		for (int k = 0; k < ng && !clash; k++)
			clash = same(group[k], jobs[i]);
		if (clash)
			jobs[keep++] = jobs[i];
		else
			group[ng++] = jobs[i];
	}
	*n = keep;
	return ng;
}
