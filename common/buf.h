/* buf: a growable byte buffer owned by its user (heap, malloc'd data).
 *
 * BUF_ZERO initialises; buf_free releases.  Appending aborts on out of
 * memory (see arena.h for why).  data is always NUL-terminated after any
 * append, so text built here can be used as a C string. */
#ifndef IOTRULES_BUF_H
#define IOTRULES_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
	char *data;
	size_t len, cap;
} buf;

#define BUF_ZERO {NULL, 0, 0}

void buf_reserve(buf *b, size_t extra);
void buf_add(buf *b, const void *p, size_t n);
void buf_adds(buf *b, const char *s);
void buf_addc(buf *b, char c);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_add_u32(buf *b, uint32_t v);  /* little endian */
void buf_add_u64(buf *b, uint64_t v);  /* little endian */
/* Appends s (n bytes) as a JSON string literal, quotes included. */
void buf_add_json_str(buf *b, const char *s, size_t n);
void buf_reset(buf *b);   /* len = 0, keeps the memory */
/* Appends the bytes of the file at path, at most max of them.  0 (data
 * is then allocated and NUL-terminated, even for an empty file), or -1
 * with errno set (EFBIG: the file is larger than max); on -1 b holds
 * what was there before plus an unspecified part of the file. */
int buf_read_file(buf *b, const char *path, size_t max);
void buf_free(buf *b);

#endif
