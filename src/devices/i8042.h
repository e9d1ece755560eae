/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * i8042 PS/2 controller with a keyboard that answers the usual commands and no mouse:
 * enough for the 0xFE reset pulse and for an OS to probe and find a keyboard. The AUX port
 * reports itself absent (its enable/disable commands do not change the configuration byte).
 */
#ifndef VIRIDIAN_DEVICES_I8042_H
#define VIRIDIAN_DEVICES_I8042_H

#include "devices/dev.h"
#include "vid/iobus.h"

#include <pthread.h>
#include <stdint.h>

#define I8042_STS_OBF 0x01
#define I8042_STS_IBF 0x02
#define I8042_STS_SYS 0x04
#define I8042_STS_CMD 0x08
#define I8042_STS_UNLOCKED 0x10
#define I8042_STS_AUX_OBF 0x20

#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYS 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40

#define I8042_OUTQ 16

struct i8042 {
	pthread_mutex_t lock;
	struct dev_irq kbd_irq;
	struct dev_event reset;
	uint8_t status, ctr, outport;
	uint8_t pending_cmd; /* controller command waiting for its data byte, or 0 */
	uint8_t pending_kbd_cmd; /* keyboard command waiting for its argument, or 0 */
	uint8_t outq[I8042_OUTQ];
	unsigned out_head, out_count;
	bool irq_level;
};

void i8042_init(struct i8042 *k, const struct dev_irq *kbd_irq, const struct dev_event *reset);
void i8042_destroy(struct i8042 *k);
int i8042_register(struct i8042 *k, struct iobus *pio);
iobus_handler_fn i8042_data_io; /* port 0x60 */
iobus_handler_fn i8042_cmd_io; /* port 0x64 */

#endif
