/* SPDX-License-Identifier: GPL-2.0-only */
/* Reset control register at port 0xCF9: writing bit 2 (RST_CPU) resets the VM (bit 1 = hard). */
#ifndef VIRIDIAN_DEVICES_RESET_H
#define VIRIDIAN_DEVICES_RESET_H

#include "devices/dev.h"
#include "vid/iobus.h"

#include <pthread.h>
#include <stdint.h>

#define RESET_CF9_SYS_RST 0x02
#define RESET_CF9_RST_CPU 0x04

struct reset_cf9 {
	pthread_mutex_t lock;
	struct dev_event reset;
	uint8_t value;
};

void reset_cf9_init(struct reset_cf9 *rc, const struct dev_event *reset);
void reset_cf9_destroy(struct reset_cf9 *rc);
int reset_cf9_register(struct reset_cf9 *rc, struct iobus *pio);
iobus_handler_fn reset_cf9_io;

#endif
