// SPDX-License-Identifier: GPL-2.0-only
/* 0xCF9 reset control register. */
#include "devices/reset.h"

#include "lib/log.h"
#include "vid/layout.h"

#include <string.h>

void reset_cf9_init(struct reset_cf9 *rc, const struct dev_event *reset)
{
	memset(rc, 0, sizeof(*rc));
	pthread_mutex_init(&rc->lock, NULL);
	if (reset)
		rc->reset = *reset;
}

void reset_cf9_destroy(struct reset_cf9 *rc)
{
	pthread_mutex_destroy(&rc->lock);
}

void reset_cf9_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct reset_cf9 *rc = opaque;
	bool fire = false;

	pthread_mutex_lock(&rc->lock);
	if (is_write) {
		/* RST_CPU is self-clearing; SYS_RST only chooses hard over soft reset. */
		rc->value = data[0] & RESET_CF9_SYS_RST;
		fire = data[0] & RESET_CF9_RST_CPU;
	} else {
		data[0] = rc->value;
	}
	pthread_mutex_unlock(&rc->lock);
	if (fire) {
		log_info("devices", "0xcf9: guest requested a %s reset",
			 (data[0] & RESET_CF9_SYS_RST) ? "hard" : "soft");
		dev_event_fire(&rc->reset, "0xcf9 reset");
	}
}

int reset_cf9_register(struct reset_cf9 *rc, struct iobus *pio)
{
	return iobus_register(pio, LAYOUT_RESET_PORT, 1, reset_cf9_io, rc, "reset-cf9");
}
