/* TAP on COM1: "1..N", "ok N - name", "not ok N - name # reason". */
#ifndef TGUEST_TAP_H
#define TGUEST_TAP_H

void tap_plan(unsigned int n);
unsigned int tap_emitted(void);
void tap_set_current(const char *scenario);
void tap_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tap_not_ok(const char *name, const char *reason_fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* For the exception handler: fails the next test number in the current scenario. */
void tap_fail_current(const char *reason_fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
