/* utf8: checks of UTF-8 text that AWS services refuse when malformed
 * (SQS message bodies, CloudWatch Logs messages, DynamoDB strings) or
 * count in characters (Step Functions names).  No allocation; pointers
 * are only read. */
#ifndef IOTRULES_UTF8_H
#define IOTRULES_UTF8_H

#include <stddef.h>

/* Length (2..4) of the well-formed multi-byte sequence at p (p < end),
 * or 0 when it is not one: overlong forms, surrogates, code points past
 * U+10FFFF and truncated sequences are not.  ASCII is not multi-byte:
 * 0 too. */
int utf8_seq_len(const unsigned char *p, const unsigned char *end);

/* 1 when s[0..n) is well-formed UTF-8, else 0. */
int utf8_valid(const void *s, size_t n);

/* Characters (code points) of the NUL-terminated UTF-8 string s; bytes
 * that are not a sequence's first count one each. */
size_t utf8_chars(const char *s);

#endif
