/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Last error message of the calling thread. Library functions return -errno
 * (or -1) and leave a one-line, user-facing reason here: what is wrong and,
 * where it helps, how to fix it.
 */
#ifndef VIRIDIAN_LIB_ERR_H
#define VIRIDIAN_LIB_ERR_H

void err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with more context: "<context>: <old message>". */
void err_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *err_msg(void);
void err_clear(void);

#endif
