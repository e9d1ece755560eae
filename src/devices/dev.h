/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every emulated device gets from its owner: an interrupt line to drive and, where the
 * device can do it, reset and power-off requests. Devices know nothing about KVM, so each is
 * unit-tested by driving its bus handlers and watching these callbacks.
 */
#ifndef VIRIDIAN_DEVICES_DEV_H
#define VIRIDIAN_DEVICES_DEV_H

struct dev_irq {
	/* level 1 = asserted, 0 = deasserted; called only when the level changes */
	void (*set)(void *opaque, unsigned irq, int level);
	void *opaque;
	unsigned irq;
};

struct dev_event {
	void (*fn)(void *opaque, const char *why);
	void *opaque;
};

static inline void dev_irq_set(const struct dev_irq *line, int level)
{
	if (line->set)
		line->set(line->opaque, line->irq, level);
}

static inline void dev_event_fire(const struct dev_event *ev, const char *why)
{
	if (ev->fn)
		ev->fn(ev->opaque, why);
}

#endif
