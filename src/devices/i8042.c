// SPDX-License-Identifier: GPL-2.0-only
/* i8042 keyboard controller: self-test, configuration byte, keyboard replies, reset line. */
#include "devices/i8042.h"

#include "lib/log.h"
#include "vid/layout.h"

#include <string.h>

static void i8042_update_irq(struct i8042 *k)
{
	bool level = k->out_count && (k->ctr & I8042_CTR_KBDINT);

	if (k->out_count)
		k->status |= I8042_STS_OBF;
	else
		k->status &= ~I8042_STS_OBF;
	if (level != k->irq_level) {
		k->irq_level = level;
		dev_irq_set(&k->kbd_irq, level);
	}
}

static void i8042_queue(struct i8042 *k, uint8_t v)
{
	if (k->out_count >= I8042_OUTQ)
		return;
	k->outq[(k->out_head + k->out_count) % I8042_OUTQ] = v;
	k->out_count++;
}

void i8042_init(struct i8042 *k, const struct dev_irq *kbd_irq, const struct dev_event *reset)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	if (kbd_irq)
		k->kbd_irq = *kbd_irq;
	if (reset)
		k->reset = *reset;
	k->status = I8042_STS_SYS | I8042_STS_UNLOCKED;
	k->ctr = I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE;
	k->outport = 0x01; /* bit 0: reset line not asserted */
}

void i8042_destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void i8042_reset_pulse(struct i8042 *k)
{
	log_info("devices", "i8042: guest pulsed the CPU reset line");
	dev_event_fire(&k->reset, "i8042 reset (0xFE)");
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read configuration byte */
		i8042_queue(k, k->ctr);
		break;
	case 0x60: /* write configuration byte: data follows */
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write aux output buffer */
	case 0xd4: /* write to aux device */
		k->pending_cmd = cmd;
		break;
	case 0xa7: /* disable / enable aux: no aux device, so the byte keeps its value */
	case 0xa8:
		break;
	case 0xa9: /* aux interface test: clock line stuck low = no device */
		i8042_queue(k, 0x01);
		break;
	case 0xaa: /* controller self-test */
		k->status |= I8042_STS_SYS;
		i8042_queue(k, 0x55);
		break;
	case 0xab: /* keyboard interface test */
		i8042_queue(k, 0x00);
		break;
	case 0xad:
		k->ctr |= I8042_CTR_KBDDIS;
		break;
	case 0xae:
		k->ctr &= ~I8042_CTR_KBDDIS;
		break;
	case 0xd0: /* read output port */
		i8042_queue(k, k->outport);
		break;
	default:
		/* 0xF0..0xFF pulse output-port bits low for 6 us; bit 0 is the CPU reset line. */
		if (cmd >= 0xf0 && !(cmd & 0x01)) {
			i8042_reset_pulse(k);
			break;
		}
		if (cmd >= 0xf0)
			break;
		log_debug("devices", "i8042: ignored controller command 0x%02x", cmd);
		break;
	}
}

static void i8042_kbd_command(struct i8042 *k, uint8_t v)
{
	if (k->pending_kbd_cmd) {
		/* Argument of LED / typematic / scan-set commands. */
		if (k->pending_kbd_cmd == 0xf0 && v == 0)
			i8042_queue(k, 0xfa), i8042_queue(k, 0x02);
		else
			i8042_queue(k, 0xfa);
		k->pending_kbd_cmd = 0;
		return;
	}
	switch (v) {
	case 0xed: /* set LEDs */
	case 0xf0: /* get/set scan code set */
	case 0xf3: /* typematic rate */
		k->pending_kbd_cmd = v;
		i8042_queue(k, 0xfa);
		break;
	case 0xee: /* echo */
		i8042_queue(k, 0xee);
		break;
	case 0xf2: /* identify: MF2 keyboard */
		i8042_queue(k, 0xfa);
		i8042_queue(k, 0xab);
		i8042_queue(k, 0x83);
		break;
	case 0xff: /* reset and self-test */
		i8042_queue(k, 0xfa);
		i8042_queue(k, 0xaa);
		break;
	default: /* enable, disable, defaults, resend, ...: acknowledged */
		i8042_queue(k, 0xfa);
		break;
	}
}

static void i8042_data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->status &= ~I8042_STS_CMD;
	k->pending_cmd = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = (uint8_t)((v & ~I8042_CTR_AUXDIS) | (k->ctr & I8042_CTR_AUXDIS));
		if (v & I8042_CTR_SYS)
			k->status |= I8042_STS_SYS;
		else
			k->status &= ~I8042_STS_SYS;
		break;
	case 0xd1:
		k->outport = v;
		if (!(v & 0x01))
			i8042_reset_pulse(k);
		break;
	case 0xd2:
		i8042_queue(k, v);
		break;
	case 0xd3:
	case 0xd4:
		break; /* no aux device: nothing answers */
	default:
		i8042_kbd_command(k, v);
		break;
	}
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		i8042_data_write(k, data[0]);
	} else {
		uint8_t v = 0;

		if (k->out_count) {
			v = k->outq[k->out_head];
			k->out_head = (k->out_head + 1) % I8042_OUTQ;
			k->out_count--;
		}
		data[0] = v;
	}
	for (unsigned i = 1; i < size && !is_write; i++)
		data[i] = 0xff;
	i8042_update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct i8042 *k = opaque;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status |= I8042_STS_CMD;
		i8042_command(k, data[0]);
	}
	i8042_update_irq(k);
	if (!is_write) {
		data[0] = k->status;
		for (unsigned i = 1; i < size; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
}

int i8042_register(struct i8042 *k, struct iobus *pio)
{
	int r = iobus_register(pio, LAYOUT_I8042_DATA_PORT, 1, i8042_data_io, k, "i8042-data");

	if (r == 0)
		r = iobus_register(pio, LAYOUT_I8042_CMD_PORT, 1, i8042_cmd_io, k, "i8042-cmd");
	return r;
}
