/* utf8: see utf8.h.  The ranges are those of RFC 3629's table. */
#include "common/utf8.h"

int
utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
	int n = p[0] >= 0xC2 && p[0] <= 0xDF ? 2 : p[0] >= 0xE0 && p[0] <= 0xEF ? 3 : p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : 0;
	if (n == 0 || end - p < n)
		return 0;
	unsigned char lo = 0x80, hi = 0xBF;
	if (p[0] == 0xE0)
		lo = 0xA0;      /* overlong */
	else if (p[0] == 0xED)
		hi = 0x9F;      /* surrogates */
	else if (p[0] == 0xF0)
		lo = 0x90;      /* overlong */
	else if (p[0] == 0xF4)
		hi = 0x8F;      /* past U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (int i = 2; i < n; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	return n;
}

int
utf8_valid(const void *s, size_t n)
{
	const unsigned char *p = s, *end = p + n;
	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		int k = utf8_seq_len(p, end);
		if (k == 0)
			return 0;
		p += k;
	}
	return 1;
}

size_t
utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}
