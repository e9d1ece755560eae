/*
 * S5 entry (ACPI spec 7.4.2 / 4.8.3.7): full ACPI writes SLP_TYPa/b and SLP_EN to the
 * PM1a/PM1b control blocks (SLP_TYP bits 12:10, SLP_EN bit 13); hardware-reduced ACPI
 * writes SLP_TYP (bits 4:2) and SLP_EN (bit 5) to the FADT sleep control register.
 */
#include "power.h"
#include "acpi.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "timer.h"

#define PM1_SCI_EN 0x0001
#define PM1_SLP_TYP_MASK 0x1c00
#define PM1_SLP_EN 0x2000
#define SLPCTL_SLP_EN 0x20

/* If firmware left the machine in legacy mode, switch to ACPI mode first. */
static void acpi_enable_mode(void)
{
	if (acpi.smi_cmd && acpi.acpi_enable && acpi.smi_cmd <= 0xffff &&
	    !(acpi_gas_read(&acpi.pm1a_cnt, 16) & PM1_SCI_EN)) {
		uint64_t d;

		outb((uint16_t)acpi.smi_cmd, acpi.acpi_enable);
		d = timer_deadline_us(100000);
		while (!(acpi_gas_read(&acpi.pm1a_cnt, 16) & PM1_SCI_EN) && !timer_expired(d))
			cpu_relax();
	}
}

void power_off(void)
{
	/* Without \_S5 fall back to the values QEMU and most firmware use. */
	uint8_t typa = acpi.slp_typa, typb = acpi.slp_typb;

	if (!acpi.s5_found)
		typa = typb = acpi.hw_reduced ? 5 : 0;
	if (acpi.hw_reduced && acpi.sleep_ctl.addr) {
		printf("# power off: sleep control register, SLP_TYP %u\n", typa);
		acpi_gas_write(&acpi.sleep_ctl, 8, (uint64_t)((typa & 7) << 2) | SLPCTL_SLP_EN);
	} else if (acpi.pm1a_cnt.addr) {
		printf("# power off: PM1a control %#lx, SLP_TYP %u\n",
		       (unsigned long)acpi.pm1a_cnt.addr, typa);
		acpi_enable_mode();
		if (acpi.pm1b_cnt.addr) {
			uint64_t v = acpi_gas_read(&acpi.pm1b_cnt, 16) & ~PM1_SLP_TYP_MASK;

			acpi_gas_write(&acpi.pm1b_cnt, 16,
				       v | ((uint64_t)(typb & 7) << 10) | PM1_SLP_EN);
		}
		uint64_t v = acpi_gas_read(&acpi.pm1a_cnt, 16) & ~(PM1_SLP_TYP_MASK | PM1_SLP_EN);

		acpi_gas_write(&acpi.pm1a_cnt, 16, v | ((uint64_t)(typa & 7) << 10) | PM1_SLP_EN);
	}
	udelay(100000);
	printf("# power-off failed\n");
	cpu_halt_forever();
}
