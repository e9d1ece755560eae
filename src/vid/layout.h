/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The platform Viridian presents: one place for every address, port and IRQ,
 * so that the devices, the ACPI tables and the loaders agree.
 */
#ifndef VIRIDIAN_VID_LAYOUT_H
#define VIRIDIAN_VID_LAYOUT_H

/* Guest-physical map. RAM runs from 0 to LAYOUT_MMIO_HOLE_START, the rest above 4 GiB. */
#define LAYOUT_MMIO_HOLE_START 0xc0000000ull
#define LAYOUT_MMIO_HOLE_END 0x100000000ull
#define LAYOUT_IOAPIC_BASE 0xfec00000ull
#define LAYOUT_LAPIC_BASE 0xfee00000ull
#define LAYOUT_HIGH_RAM_START 0x100000000ull

/* Low memory the loaders use (all inside the first MiB, reserved in e820 where noted). */
#define LAYOUT_GDT_GPA 0x500ull /* boot GDT */
#define LAYOUT_PVH_START_INFO_GPA 0x6000ull /* hvm_start_info + memmap + modlist */
#define LAYOUT_BOOT_PARAMS_GPA 0x7000ull /* Linux zero page */
#define LAYOUT_PAGE_TABLES_GPA 0x9000ull /* PML4, PDPT, 4 PDs: identity map of 4 GiB */
#define LAYOUT_BOOT_STACK_TOP 0x8ff0ull
#define LAYOUT_CMDLINE_GPA 0x20000ull
#define LAYOUT_CMDLINE_MAX 0x10000ull
#define LAYOUT_EBDA_START 0x9fc00ull /* reserved from here to 1 MiB */
#define LAYOUT_ACPI_GPA 0xe0000ull /* ACPI tables, inside the reserved BIOS area */
#define LAYOUT_ACPI_MAX 0x20000ull
#define LAYOUT_KERNEL_GPA 0x1000000ull /* 16 MiB: 64-bit bzImage load address */

/* Port I/O. */
#define LAYOUT_COM1_PORT 0x3f8
#define LAYOUT_COM1_IRQ 4
#define LAYOUT_RTC_PORT 0x70 /* index 0x70, data 0x71 */
#define LAYOUT_RTC_IRQ 8
#define LAYOUT_I8042_DATA_PORT 0x60
#define LAYOUT_I8042_CMD_PORT 0x64
#define LAYOUT_I8042_KBD_IRQ 1
#define LAYOUT_RESET_PORT 0xcf9
/* ACPI fixed hardware: PM1a event (4 bytes), PM1a control (2), PM timer (4). */
#define LAYOUT_ACPI_PM_BASE 0x600
#define LAYOUT_ACPI_PM1A_EVT (LAYOUT_ACPI_PM_BASE + 0x0)
#define LAYOUT_ACPI_PM1A_CNT (LAYOUT_ACPI_PM_BASE + 0x4)
#define LAYOUT_ACPI_PM_TMR (LAYOUT_ACPI_PM_BASE + 0x8)
#define LAYOUT_ACPI_SCI_IRQ 9
/* The FADT sets TMR_VAL_EXT: the PM timer is a 32-bit counter (devices: timer_32bit). */
#define LAYOUT_ACPI_PM_TMR_32BIT 1
/* SLP_TYP value the DSDT's \_S5 package advertises (PM1a_CNT bits 10..12). */
#define LAYOUT_ACPI_S5_SLP_TYP 5
/* Port the Hyper-V hypercall page stub leaves through (hv layer, later). */
#define LAYOUT_HV_HYPERCALL_PORT 0x5658
/* IRQ the DSDT's VMBus device claims in _CRS (vmbus layer, later). */
#define LAYOUT_VMBUS_IRQ 5

#endif
