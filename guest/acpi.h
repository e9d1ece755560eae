/* ACPI table discovery and the few fields the guest uses (ACPI 6.x spec, chapter 5). */
#ifndef TGUEST_ACPI_H
#define TGUEST_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64

#define ACPI_GAS_MEMORY 0
#define ACPI_GAS_IO 1

struct acpi_gas {
	uint8_t space;
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;
	uint64_t addr;
};

struct acpi_header {
	char sig[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

_Static_assert(sizeof(struct acpi_header) == 36, "ACPI SDT header is 36 bytes");

struct acpi_cpu {
	uint8_t apic_id;
	uint8_t acpi_id;
};

struct acpi_info {
	bool rsdp_found;
	uint8_t rsdp_revision;
	uint64_t rsdp;
	bool use_xsdt;
	uint64_t root; /* XSDT or RSDT */
	unsigned int ntables;
	uint64_t fadt, madt, dsdt;
	uint8_t fadt_revision;
	uint32_t fadt_flags;
	bool hw_reduced;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t century; /* CMOS index of the century, 0 if none */
	struct acpi_gas pm1a_cnt, pm1b_cnt, pm_tmr, sleep_ctl;
	struct acpi_gas pm1a_sts; /* first half of the PM1a event block: PM1 status */
	struct acpi_gas pm1a_en; /* second half: PM1 enable */
	bool pm_tmr_32bit;
	bool s5_found;
	uint8_t slp_typa, slp_typb;
	uint64_t lapic_addr;
	unsigned int ncpus;
	unsigned int ncpus_dropped; /* enabled CPUs beyond ACPI_MAX_CPUS */
	struct acpi_cpu cpus[ACPI_MAX_CPUS];
	char problem[160]; /* first thing found wrong, empty if none */
};

extern struct acpi_info acpi;

void acpi_init(uint64_t rsdp_hint);
uint64_t acpi_gas_read(const struct acpi_gas *g, unsigned int default_bits);
void acpi_gas_write(const struct acpi_gas *g, unsigned int default_bits, uint64_t v);

#endif
