// SPDX-License-Identifier: GPL-2.0-only
/* ACPI PM1a event/control registers and PM timer. */
#include "devices/acpi_pm.h"

#include "lib/log.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <string.h>

void acpi_pm_init(struct acpi_pm *pm, const struct dev_irq *sci, const struct dev_event *poweroff,
		  acpi_pm_clock_fn *clock, void *clock_opaque)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	if (sci)
		pm->sci = *sci;
	if (poweroff)
		pm->poweroff = *poweroff;
	pm->clock = clock;
	pm->clock_opaque = clock_opaque;
	pm->t0_ns = clock ? clock(clock_opaque) : util_now_ns();
	pm->cnt = ACPI_PM1_CNT_SCI_EN;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

uint32_t acpi_pm_timer_read(struct acpi_pm *pm)
{
	uint64_t ns = (pm->clock ? pm->clock(pm->clock_opaque) : util_now_ns()) - pm->t0_ns;
	/* ticks = ns * 3579545 / 1e9, split so it cannot overflow for centuries of uptime. */
	uint64_t ticks = (ns / 1000000000ull) * ACPI_PM_TIMER_HZ +
			 (ns % 1000000000ull) * ACPI_PM_TIMER_HZ / 1000000000ull;

	return pm->timer_32bit ? (uint32_t)ticks : (uint32_t)(ticks & 0xffffff);
}

static void acpi_pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->cnt & ACPI_PM1_CNT_SCI_EN) && (pm->sts & pm->en);

	if (level != pm->sci_level) {
		pm->sci_level = level;
		dev_irq_set(&pm->sci, level);
	}
}

static void acpi_pm_bytes_out(uint8_t *data, unsigned size, uint64_t offset, uint64_t reg_bytes,
			      uint64_t value)
{
	for (unsigned i = 0; i < size; i++)
		data[i] = offset + i < reg_bytes ? (uint8_t)(value >> (8 * (offset + i))) : 0xff;
}

static uint64_t acpi_pm_bytes_in(const uint8_t *data, unsigned size, uint64_t offset,
				 uint64_t reg_bytes, uint64_t *mask)
{
	uint64_t v = 0;

	*mask = 0;
	for (unsigned i = 0; i < size; i++) {
		if (offset + i >= reg_bytes)
			break;
		v |= (uint64_t)data[i] << (8 * (offset + i));
		*mask |= 0xffull << (8 * (offset + i));
	}
	return v;
}

void acpi_pm_evt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint64_t v, mask;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		acpi_pm_bytes_out(data, size, offset, 4, pm->sts | ((uint32_t)pm->en << 16));
	} else {
		v = acpi_pm_bytes_in(data, size, offset, 4, &mask);
		/* Status bits are write-one-to-clear; enable bits are plain. */
		pm->sts &= (uint16_t) ~(v & mask & 0xffff);
		if (mask & 0xffff0000)
			pm->en = (uint16_t)((pm->en & ~(mask >> 16)) | ((v & mask) >> 16));
		pm->en &= ACPI_PM1_TMR_STS | ACPI_PM1_PWRBTN_STS;
		acpi_pm_update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_cnt_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint64_t v, mask;
	bool off = false;
	unsigned typ = 0;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		acpi_pm_bytes_out(data, size, offset, 2, pm->cnt);
	} else {
		v = acpi_pm_bytes_in(data, size, offset, 2, &mask);
		v = (pm->cnt & ~mask) | (v & mask);
		/* SCI_EN stays set: without an SMI port the platform is always in ACPI mode. */
		pm->cnt = (uint16_t)((v & ~ACPI_PM1_CNT_SLP_EN) | ACPI_PM1_CNT_SCI_EN);
		if (v & ACPI_PM1_CNT_SLP_EN) {
			typ = (unsigned)((v & ACPI_PM1_CNT_SLP_TYP_MASK) >>
					 ACPI_PM1_CNT_SLP_TYP_SHIFT);
			off = typ == LAYOUT_ACPI_S5_SLP_TYP;
			if (!off)
				log_warn_ratelimited("devices",
						     "acpi: sleep type %u not supported, ignored",
						     typ);
		}
		acpi_pm_update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
	if (off) {
		log_info("devices", "acpi: guest entered S5 (soft off)");
		dev_event_fire(&pm->poweroff, "ACPI S5 power-off");
	}
}

void acpi_pm_tmr_io(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct acpi_pm *pm = opaque;

	if (is_write)
		return; /* read-only */
	pthread_mutex_lock(&pm->lock);
	acpi_pm_bytes_out(data, size, offset, 4, acpi_pm_timer_read(pm));
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_PWRBTN_STS;
	acpi_pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

int acpi_pm_register(struct acpi_pm *pm, struct iobus *pio)
{
	int r = iobus_register(pio, LAYOUT_ACPI_PM1A_EVT, 4, acpi_pm_evt_io, pm, "acpi-pm1a-evt");

	if (r == 0)
		r = iobus_register(pio, LAYOUT_ACPI_PM1A_CNT, 2, acpi_pm_cnt_io, pm,
				   "acpi-pm1a-cnt");
	if (r == 0)
		r = iobus_register(pio, LAYOUT_ACPI_PM_TMR, 4, acpi_pm_tmr_io, pm, "acpi-pm-tmr");
	return r;
}
