/* SPDX-License-Identifier: GPL-2.0-only */
/* One line per event: time, level, VM name, layer, message. */
#ifndef VIRIDIAN_LIB_LOG_H
#define VIRIDIAN_LIB_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG_TRACE,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Accepts error|warn|info|debug|trace; returns -1 on anything else. */
int log_level_parse(const char *s, enum log_level *out);
/* Name shown as vm=NAME on every line; NULL or "" drops the field. */
void log_set_vm_name(const char *name);

void log_emit(enum log_level level, const char *layer, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline bool log_enabled(enum log_level level)
{
	return level <= log_get_level();
}

#define log_error(layer, ...) log_emit(LOG_ERROR, layer, __VA_ARGS__)
#define log_warn(layer, ...) log_emit(LOG_WARN, layer, __VA_ARGS__)
#define log_info(layer, ...) log_emit(LOG_INFO, layer, __VA_ARGS__)
#define log_debug(layer, ...)                                                                      \
	do {                                                                                       \
		if (log_enabled(LOG_DEBUG))                                                        \
			log_emit(LOG_DEBUG, layer, __VA_ARGS__);                                   \
	} while (0)
#define log_trace(layer, ...)                                                                      \
	do {                                                                                       \
		if (log_enabled(LOG_TRACE))                                                        \
			log_emit(LOG_TRACE, layer, __VA_ARGS__);                                   \
	} while (0)

/* Token bucket per call site, so a hostile guest cannot flood the log. */
struct log_ratelimit {
	uint64_t window_start_ns;
	uint32_t emitted;
	uint32_t suppressed;
};

#define LOG_RATELIMIT_BURST 10
#define LOG_RATELIMIT_WINDOW_NS 5000000000ull

/* Returns true when the caller may log; reports how many were suppressed. */
bool log_ratelimit_allow(struct log_ratelimit *rl, const char *layer);

#define log_warn_ratelimited(layer, ...)                                                           \
	do {                                                                                       \
		static struct log_ratelimit log_rl__;                                              \
		if (log_ratelimit_allow(&log_rl__, layer))                                         \
			log_emit(LOG_WARN, layer, __VA_ARGS__);                                    \
	} while (0)

#endif
