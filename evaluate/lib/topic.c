#include "evaluate/lib/topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
topic_matches(const char *f, const char *t)
{
	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return 0;
	for (;;) {
		if (f[0] == '#' && f[1] == 0)
			return 1;  /* reached only after a '/', so never at "a" for "a/#" */
		const char *fe = strchr(f, '/');
		const char *te = strchr(t, '/');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		size_t tl = te ? (size_t)(te - t) : strlen(t);
		if (!(fl == 1 && f[0] == '+') && (fl != tl || memcmp(f, t, fl) != 0))
			return 0;
		if (!fe && !te)
			return 1;
		if (!fe || !te)
			return 0;
		f = fe + 1;
		t = te + 1;
	}
}

/* Node 0 is the root.  Edges (parent, level text) → child live in one
 * open-addressing hash table. */
typedef struct tnode {
	int *ids;
	int nids, capids;
	int plus, hash;    /* child for '+' / node holding '#' ids; -1 none */
} tnode;

typedef struct tedge {
	int parent, child; /* child -1: empty slot */
	uint32_t h;
	char *level;
	size_t len;
} tedge;

struct topic_index {
	tnode *nodes;
	int nnodes, capnodes;
	tedge *edges;
	size_t nedges, capedges;  /* capedges is a power of two */
};

static uint32_t
hash_level(int parent, const char *s, size_t n)
{
	uint32_t h = 2166136261u ^ (uint32_t)parent * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static int
new_node(topic_index *ix)
{
	if (ix->nnodes == ix->capnodes) {
		int cap = ix->capnodes ? ix->capnodes * 2 : 16;
		tnode *n = realloc(ix->nodes, sizeof(tnode) * cap);
		if (n == NULL)
			return -1;
		ix->nodes = n;
		ix->capnodes = cap;
	}
	tnode *n = &ix->nodes[ix->nnodes];
	memset(n, 0, sizeof(*n));
	n->plus = n->hash = -1;
	return ix->nnodes++;
}

topic_index *
topic_index_new(void)
{
	topic_index *ix = calloc(1, sizeof(*ix));
	if (ix == NULL)
		return NULL;
	ix->capedges = 64;
	ix->edges = calloc(ix->capedges, sizeof(tedge));
	if (ix->edges == NULL || new_node(ix) != 0) {
		topic_index_free(ix);
		return NULL;
	}
	for (size_t i = 0; i < ix->capedges; i++)
		ix->edges[i].child = -1;
	return ix;
}

void
topic_index_free(topic_index *ix)
{
	if (ix == NULL)
		return;
	for (int i = 0; i < ix->nnodes; i++)
		free(ix->nodes[i].ids);
	for (size_t i = 0; i < ix->capedges; i++)
		if (ix->edges[i].child >= 0)
			free(ix->edges[i].level);
	free(ix->nodes);
	free(ix->edges);
	free(ix);
}

static int
find_edge(const topic_index *ix, int parent, const char *s, size_t n, uint32_t h)
{
	size_t mask = ix->capedges - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const tedge *e = &ix->edges[i];
		if (e->child < 0)
			return -1;
		if (e->h == h && e->parent == parent && e->len == n && memcmp(e->level, s, n) == 0)
			return e->child;
	}
}

static int
grow_edges(topic_index *ix)
{
	size_t cap = ix->capedges * 2;
	tedge *ne = calloc(cap, sizeof(tedge));
	if (ne == NULL)
		return -1;
	for (size_t i = 0; i < cap; i++)
		ne[i].child = -1;
	for (size_t i = 0; i < ix->capedges; i++) {
		tedge *e = &ix->edges[i];
		if (e->child < 0)
			continue;
		size_t j = e->h & (cap - 1);
		while (ne[j].child >= 0)
			j = (j + 1) & (cap - 1);
		ne[j] = *e;
	}
	free(ix->edges);
	ix->edges = ne;
	ix->capedges = cap;
	return 0;
}

static int
child_for(topic_index *ix, int parent, const char *s, size_t n)
{
	if (n == 1 && s[0] == '+') {
		if (ix->nodes[parent].plus < 0) {
			int c = new_node(ix);
			if (c < 0)
				return -1;
			ix->nodes[parent].plus = c;
		}
		return ix->nodes[parent].plus;
	}
	uint32_t h = hash_level(parent, s, n);
	int c = find_edge(ix, parent, s, n, h);
	if (c >= 0)
		return c;
	if ((ix->nedges + 1) * 2 > ix->capedges && grow_edges(ix) < 0)
		return -1;
	if ((c = new_node(ix)) < 0)
		return -1;
	char *lv = malloc(n + 1);
	if (lv == NULL)
		return -1;
	memcpy(lv, s, n);
	lv[n] = 0;
	size_t i = h & (ix->capedges - 1);
	while (ix->edges[i].child >= 0)
		i = (i + 1) & (ix->capedges - 1);
	ix->edges[i] = (tedge){parent, c, h, lv, n};
	ix->nedges++;
	return c;
}

static int
add_id(tnode *n, int id)
{
	if (n->nids == n->capids) {
		int cap = n->capids ? n->capids * 2 : 2;
		int *ids = realloc(n->ids, sizeof(int) * cap);
		if (ids == NULL)
			return -1;
		n->ids = ids;
		n->capids = cap;
	}
	n->ids[n->nids++] = id;
	return 0;
}

int
topic_index_add(topic_index *ix, const char *f, int id)
{
	int cur = 0;
	for (;;) {
		if (f[0] == '#' && f[1] == 0) {
			if (ix->nodes[cur].hash < 0) {
				int c = new_node(ix);
				if (c < 0)
					return -1;
				ix->nodes[cur].hash = c;
			}
			return add_id(&ix->nodes[ix->nodes[cur].hash], id);
		}
		const char *e = strchr(f, '/');
		size_t n = e ? (size_t)(e - f) : strlen(f);
		int c = child_for(ix, cur, f, n);
		if (c < 0)
			return -1;
		cur = c;
		if (!e)
			return add_id(&ix->nodes[cur], id);
		f = e + 1;
	}
}

static void
walk(const topic_index *ix, int cur, const char *t, int first,
    void (*fn)(int, void *), void *arg)
{
	const tnode *n = &ix->nodes[cur];
	int dollar = first && t[0] == '$';
	/* '#' here matches the remaining levels (there is at least one: t is
	 * the rest after a '/', possibly empty). */
	if (n->hash >= 0 && !dollar)
		for (int i = 0; i < ix->nodes[n->hash].nids; i++)
			fn(ix->nodes[n->hash].ids[i], arg);
	const char *e = strchr(t, '/');
	size_t len = e ? (size_t)(e - t) : strlen(t);
	int kids[2] = {find_edge(ix, cur, t, len, hash_level(cur, t, len)),
	    dollar ? -1 : n->plus};
	for (int k = 0; k < 2; k++) {
		if (kids[k] < 0)
			continue;
		if (e)
			walk(ix, kids[k], e + 1, 0, fn, arg);
		else
			for (int i = 0; i < ix->nodes[kids[k]].nids; i++)
				fn(ix->nodes[kids[k]].ids[i], arg);
	}
}

void
topic_index_match(const topic_index *ix, const char *topic,
    void (*fn)(int id, void *arg), void *arg)
{
	walk(ix, 0, topic, 1, fn, arg);
}

const char *
topic_basic_ingest(const char *topic, const char **rule, size_t *rulelen)
{
	if (strncmp(topic, "$aws/rules/", 11) != 0)
		return NULL;
	const char *r = topic + 11, *slash = strchr(r, '/');
	if (slash == NULL || slash == r)
		return NULL;
	*rule = r;
	*rulelen = (size_t)(slash - r);
	return slash + 1;
}
