#include <stdarg.h>

#include "lib/printf.h"
#include "lib/spinlock.h"
#include "tap.h"

static unsigned int tap_next = 1;
static const char *tap_current = "startup";
static struct spinlock tap_lock;

void tap_plan(unsigned int n)
{
	printf("1..%u\n", n);
}

unsigned int tap_emitted(void)
{
	return tap_next - 1;
}

void tap_set_current(const char *scenario)
{
	tap_current = scenario;
}

void tap_ok(const char *fmt, ...)
{
	char desc[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	spin_lock(&tap_lock);
	printf("ok %u - %s\n", tap_next++, desc);
	spin_unlock(&tap_lock);
}

void tap_not_ok(const char *name, const char *reason_fmt, ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, reason_fmt);
	vsnprintf(reason, sizeof(reason), reason_fmt, ap);
	va_end(ap);
	spin_lock(&tap_lock);
	if (reason[0])
		printf("not ok %u - %s # %s\n", tap_next++, name, reason);
	else
		printf("not ok %u - %s\n", tap_next++, name);
	spin_unlock(&tap_lock);
}

void tap_fail_current(const char *reason_fmt, ...)
{
	char reason[200];
	va_list ap;

	va_start(ap, reason_fmt);
	vsnprintf(reason, sizeof(reason), reason_fmt, ap);
	va_end(ap);
	/* No lock: the faulting CPU may be the one holding it. */
	printf("not ok %u - %s # %s\n", tap_next++, tap_current, reason);
}
