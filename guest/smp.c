/*
 * AP start: copy the real-mode trampoline (start.S) to a free page below 1 MiB, then
 * per AP: INIT, 10 ms, SIPI, and a second SIPI if it has not checked in. APs are started
 * one at a time so that they can share the ap_stack_top / ap_boot_index hand-off.
 */
#include <stddef.h>
#include <stdint.h>

#include "arch/idt.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "lib/string.h"
#include "pvh.h"
#include "smp.h"
#include "timer.h"

#define AP_STACK_SIZE 4096
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_DELIVERY_PENDING (1u << 12)
#define ICR_INIT 0x00004500 /* INIT, level assert */
#define ICR_SIPI 0x00004600 /* start-up, vector = page number */
#define MSR_APIC_BASE 0x1b
#define APIC_BASE_X2APIC (1u << 10)
#define AP_START_TIMEOUT_US 2000000
#define AP_TASK_TIMEOUT_US 1000000

extern const uint8_t ap_tramp_start[], ap_tramp_end[];

struct cpu cpus[ACPI_MAX_CPUS];
unsigned int ncpus;

/* Read by start.S (AP stack) and ap_main (which slot it fills). */
uint64_t ap_stack_top;
static volatile unsigned int ap_boot_index;
static uint8_t ap_stacks[ACPI_MAX_CPUS][AP_STACK_SIZE]
	__attribute__((aligned(16), section(".bss.stacks")));
static int smp_started;

void ap_main(void);

/* A small task whose answer depends on the CPU slot: sum of (i + 1) * (idx + 1). */
static uint64_t smp_task_run(unsigned int idx)
{
	volatile uint32_t data[64];
	uint64_t sum = 0;

	for (unsigned int i = 0; i < 64; i++)
		data[i] = (i + 1) * (idx + 1);
	for (unsigned int i = 0; i < 64; i++)
		sum += data[i];
	return sum;
}

uint64_t smp_task_expected(unsigned int idx)
{
	return (uint64_t)(idx + 1) * 64 * 65 / 2;
}

void ap_main(void)
{
	unsigned int idx = ap_boot_index;

	idt_load();
	if (idx >= ACPI_MAX_CPUS)
		cpu_halt_forever();
	cpus[idx].seen_apic = cpu_apic_id();
	__atomic_store_n(&cpus[idx].state, CPU_STARTED, __ATOMIC_RELEASE);
	cpus[idx].result = smp_task_run(idx);
	__atomic_store_n(&cpus[idx].state, CPU_DONE, __ATOMIC_RELEASE);
	cpu_halt_forever();
}

static uint32_t lapic_rd(uint32_t reg)
{
	return mmio_read32(acpi.lapic_addr + reg);
}

static void lapic_wr(uint32_t reg, uint32_t v)
{
	mmio_write32(acpi.lapic_addr + reg, v);
}

static int lapic_send(uint32_t apic_id, uint32_t icr)
{
	lapic_wr(LAPIC_ICR_HI, apic_id << 24);
	lapic_wr(LAPIC_ICR_LO, icr);
	for (int i = 0; i < 1000; i++) {
		if (!(lapic_rd(LAPIC_ICR_LO) & ICR_DELIVERY_PENDING))
			return 0;
		udelay(10);
	}
	return -1;
}

/* A 4 KiB page below 1 MiB that the memory map says is RAM and no loader structure uses. */
static uint32_t tramp_page(void)
{
	static const uint32_t candidates[] = {0x70000, 0x60000, 0x50000, 0x40000,
					      0x30000, 0x20000, 0x80000, 0x10000};

	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (boot_range_is_ram(candidates[i], 4096))
			return candidates[i];
	return 0;
}

static void smp_fail_all(const char *why)
{
	for (unsigned int i = 1; i < ncpus; i++)
		cpus[i].error = why;
}

static void ap_start(unsigned int idx, uint32_t page)
{
	struct cpu *c = &cpus[idx];
	uint64_t d;

	ap_boot_index = idx;
	ap_stack_top = (uint64_t)(uintptr_t)&ap_stacks[idx][AP_STACK_SIZE];
	barrier();
	if (lapic_send(c->apic_id, ICR_INIT)) {
		c->error = "INIT IPI stuck in delivery";
		return;
	}
	udelay(10000);
	for (int sipi = 0; sipi < 2; sipi++) {
		if (lapic_send(c->apic_id, ICR_SIPI | (page >> 12))) {
			c->error = "SIPI stuck in delivery";
			return;
		}
		/* 200 us per the SDM; the second SIPI is ignored if the first one worked. */
		d = timer_deadline_us(200);
		while (!timer_expired(d) && !__atomic_load_n(&c->state, __ATOMIC_ACQUIRE))
			cpu_relax();
		if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE))
			break;
	}
	d = timer_deadline_us(AP_START_TIMEOUT_US);
	while (!__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) && !timer_expired(d))
		cpu_relax();
	if (!__atomic_load_n(&c->state, __ATOMIC_ACQUIRE)) {
		c->error = "did not start within 2 s";
		return;
	}
	d = timer_deadline_us(AP_TASK_TIMEOUT_US);
	while (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != CPU_DONE && !timer_expired(d))
		cpu_relax();
	if (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != CPU_DONE)
		c->error = "started but did not finish its task within 1 s";
}

void smp_start_all(void)
{
	uint32_t bsp = cpu_apic_id(), page;
	unsigned int i;

	if (smp_started)
		return;
	smp_started = 1;

	/* BSP first, then the others in MADT order. */
	ncpus = 1;
	cpus[0].apic_id = bsp;
	for (i = 0; i < acpi.ncpus; i++)
		if (acpi.cpus[i].apic_id != bsp && ncpus < ACPI_MAX_CPUS)
			cpus[ncpus++].apic_id = acpi.cpus[i].apic_id;
	cpus[0].seen_apic = bsp;
	cpus[0].result = smp_task_run(0);
	cpus[0].state = CPU_DONE;
	for (i = 0; i < acpi.ncpus && acpi.cpus[i].apic_id != bsp; i++)
		;
	if (i == acpi.ncpus)
		cpus[0].error = "BSP apic id is not in the MADT";
	if (ncpus == 1)
		return;

	if (!acpi.lapic_addr || acpi.lapic_addr > 0xfffff000ull) {
		smp_fail_all("MADT local APIC address is not below 4 GiB");
		return;
	}
	if ((rdmsr(MSR_APIC_BASE) & 0xffffff000ull) != acpi.lapic_addr) {
		smp_fail_all("MADT local APIC address differs from IA32_APIC_BASE");
		return;
	}
	if (rdmsr(MSR_APIC_BASE) & APIC_BASE_X2APIC) {
		smp_fail_all("x2APIC mode already enabled; only xAPIC is supported");
		return;
	}
	page = tramp_page();
	if (!page) {
		smp_fail_all("no usable RAM page below 1 MiB for the AP trampoline");
		return;
	}
	memcpy((void *)(uintptr_t)page, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	/* Software-enable the local APIC, spurious vector 0xff (interrupts stay masked). */
	lapic_wr(LAPIC_SVR, lapic_rd(LAPIC_SVR) | 0x1ff);
	for (i = 1; i < ncpus; i++)
		ap_start(i, page);
}
