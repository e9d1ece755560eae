// SPDX-License-Identifier: GPL-2.0-only
#include "lib/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level log_level_current = LOG_INFO;
static char log_vm_name[80];
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_level_names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warn", [LOG_INFO] = "info",
	[LOG_DEBUG] = "debug", [LOG_TRACE] = "trace",
};

void log_set_level(enum log_level level)
{
	log_level_current = level;
}

enum log_level log_get_level(void)
{
	return log_level_current;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(log_level_names) / sizeof(log_level_names[0]); i++) {
		if (strcasecmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_vm_name(const char *name)
{
	pthread_mutex_lock(&log_lock);
	snprintf(log_vm_name, sizeof(log_vm_name), "%s", name ? name : "");
	pthread_mutex_unlock(&log_lock);
}

void log_emit(enum log_level level, const char *layer, const char *fmt, ...)
{
	char msg[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > log_level_current)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One event, one line: fold any newline the message carries. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s%s%s%s: %s\n",
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, log_level_names[level], log_vm_name[0] ? "vm=" : "",
		log_vm_name, log_vm_name[0] ? " " : "", layer, msg);
	pthread_mutex_unlock(&log_lock);
}

bool log_ratelimit_allow(struct log_ratelimit *rl, const char *layer)
{
	struct timespec ts;
	uint64_t now;
	bool allow;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	pthread_mutex_lock(&log_lock);
	if (now - rl->window_start_ns >= LOG_RATELIMIT_WINDOW_NS) {
		uint32_t suppressed = rl->suppressed;

		rl->window_start_ns = now;
		rl->emitted = 0;
		rl->suppressed = 0;
		pthread_mutex_unlock(&log_lock);
		if (suppressed)
			log_emit(LOG_WARN, layer, "%u similar messages suppressed", suppressed);
		pthread_mutex_lock(&log_lock);
	}
	allow = rl->emitted < LOG_RATELIMIT_BURST;
	if (allow)
		rl->emitted++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&log_lock);
	return allow;
}
