/* SPDX-License-Identifier: GPL-2.0-only */
/* Small helpers: size parsing, whole-buffer file I/O, atomic file replace. */
#ifndef VIRIDIAN_LIB_UTIL_H
#define VIRIDIAN_LIB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a)-1))
#define IS_ALIGNED(x, a) (((x) & ((__typeof__(x))(a)-1)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * "512", "64K", "256M", "2G", "1T" (binary multiples; optional trailing "B" or
 * "iB"). Rejects empty strings, junk, negative values and overflow.
 */
int util_parse_size(const char *s, uint64_t *out);
/* Decimal or 0x-prefixed unsigned; whole string must parse. */
int util_parse_u64(const char *s, uint64_t *out);

/* Loop over short reads/writes and EINTR. Return 0, or -errno (-EIO on EOF). */
int util_pread_full(int fd, void *buf, size_t len, off_t off);
int util_pwrite_full(int fd, const void *buf, size_t len, off_t off);

/* Write a file atomically: temp file, fsync, rename, fsync of the directory. */
int util_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Monotonic nanoseconds. */
uint64_t util_now_ns(void);

#endif
