/* Hosted stand-in for guest/tap.h (scenario_shim.c counts and prints the lines). */
#ifndef HARNESS_SHIM_TAP_H
#define HARNESS_SHIM_TAP_H

void tap_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap_not_ok(const char *name, const char *reason_fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
