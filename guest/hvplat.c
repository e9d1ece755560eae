/*
 * hvplat for the freestanding test guest: real CPUID/MSRs (with #GP recovery), the hypercall
 * page the client enabled, IDT gates patched in place for the SynIC vector, local APIC EOI,
 * and a page pool. The guest identity-maps 0-4 GiB, so GPA == VA here.
 */
#include <stdarg.h>
#include <stdint.h>

#include "acpi.h"
#include "arch/x86.h"
#include "hvplat.h"
#include "lib/printf.h"
#include "lib/spinlock.h"
#include "pvh.h"
#include "smp.h"
#include "timer.h"

#define POOL_PAGES 512u
#define IRQ_SLOTS 4u
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define SPURIOUS_VECTOR 0xff
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_NMI 0x00004400u /* delivery mode NMI, assert */
#define ICR_PENDING (1u << 12)

int hvplat_rdmsr_raw(uint32_t msr, uint64_t *val);
int hvplat_wrmsr_raw(uint32_t msr, uint64_t val);
void hvplat_gp_entry(void);
void hvplat_spurious_stub(void);
void hvplat_irq_stub0(void);
void hvplat_irq_stub1(void);
void hvplat_irq_stub2(void);
void hvplat_irq_stub3(void);
void hvplat_irq_dispatch(unsigned slot);
void hvplat_nmi_stub(void);
void hvplat_nmi_dispatch(void);

/* Where the #GP filter sends faults that are not ours (the guest's own report). */
uint64_t hvplat_gp_orig;

static uint8_t pool[POOL_PAGES][HVPLAT_PAGE_SIZE]
	__attribute__((aligned(4096), section(".bss.stacks")));
static uint8_t pool_used[POOL_PAGES];
static struct spinlock pool_lock;
static void *hcall_page;

static struct {
	uint8_t vector;
	hvplat_irq_fn fn;
	void *arg;
	uint64_t count[ACPI_MAX_CPUS];
} slots[IRQ_SLOTS];
static void (*const slot_stub[IRQ_SLOTS])(void) = {hvplat_irq_stub0, hvplat_irq_stub1,
						   hvplat_irq_stub2, hvplat_irq_stub3};
static int gp_installed;
static int nmi_installed;

/* hvplat_run_on() hand-off, one per CPU. */
static struct {
	void (*volatile fn)(void *arg);
	void *arg;
	volatile int done;
} nmi_work[ACPI_MAX_CPUS];

struct idt_gate64 {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

static struct idt_gate64 *idt_base(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;

	__asm__ volatile("sidt %0" : "=m"(idtr));
	return (struct idt_gate64 *)(uintptr_t)idtr.base;
}

static uint64_t gate_target(const struct idt_gate64 *g)
{
	return g->off_lo | (uint64_t)g->off_mid << 16 | (uint64_t)g->off_hi << 32;
}

/* The IDT is shared by every CPU (idt.c loads the same table on each). */
static void gate_set(unsigned vector, void (*fn)(void))
{
	struct idt_gate64 *g = &idt_base()[vector];
	uint64_t h = (uint64_t)(uintptr_t)fn;

	g->off_lo = (uint16_t)h;
	g->off_mid = (uint16_t)(h >> 16);
	g->off_hi = (uint32_t)(h >> 32);
	g->sel = 0x18;
	g->ist = 0;
	g->type = 0x8e;
	g->zero = 0;
}

static void gp_filter_install(void)
{
	if (gp_installed)
		return;
	hvplat_gp_orig = gate_target(&idt_base()[13]);
	gate_set(13, hvplat_gp_entry);
	gate_set(SPURIOUS_VECTOR, hvplat_spurious_stub);
	gp_installed = 1;
}

int hvplat_rdmsr(uint32_t msr, uint64_t *val)
{
	gp_filter_install();
	return hvplat_rdmsr_raw(msr, val);
}

int hvplat_wrmsr(uint32_t msr, uint64_t val)
{
	gp_filter_install();
	return hvplat_wrmsr_raw(msr, val);
}

void hvplat_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	cpuid(leaf, subleaf, &out[0], &out[1], &out[2], &out[3]);
}

void hvplat_hypercall_page_set(void *va)
{
	hcall_page = va;
}

/* The stub may clobber RCX, RDX, R8-R11 and flags (spec §2.3). */
uint64_t hvplat_hypercall(uint64_t control, uint64_t input, uint64_t output)
{
	register uint64_t r8 __asm__("r8") = output;
	uint64_t rax;

	if (!hcall_page)
		return ~0ull;
	__asm__ volatile("call *%[page]"
			 : "=a"(rax), "+c"(control), "+d"(input), "+r"(r8)
			 : [page] "r"(hcall_page)
			 : "r9", "r10", "r11", "memory", "cc");
	return rax;
}

int hvplat_pages_alloc(unsigned npages, struct hvplat_pages *out)
{
	unsigned run = 0, start = 0;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!npages)
		return -1;
	spin_lock(&pool_lock);
	for (unsigned p = 0; p < POOL_PAGES; p++) {
		if (pool_used[p]) {
			run = 0;
			continue;
		}
		if (!run)
			start = p;
		if (++run == npages) {
			memset(pool_used + start, 1, npages);
			ret = 0;
			break;
		}
	}
	spin_unlock(&pool_lock);
	if (ret)
		return -1;
	out->va = pool[start];
	out->gpa = (uint64_t)(uintptr_t)pool[start];
	out->npages = npages;
	memset(out->va, 0, (size_t)npages * HVPLAT_PAGE_SIZE);
	return 0;
}

void hvplat_pages_free(struct hvplat_pages *p)
{
	uintptr_t first;

	if (!p->npages || (uint8_t *)p->va < pool[0] ||
	    (uint8_t *)p->va >= pool[POOL_PAGES - 1] + 1)
		return;
	first = ((uintptr_t)p->va - (uintptr_t)pool[0]) / HVPLAT_PAGE_SIZE;
	spin_lock(&pool_lock);
	for (uintptr_t i = first; i < first + p->npages && i < POOL_PAGES; i++)
		pool_used[i] = 0;
	spin_unlock(&pool_lock);
	memset(p, 0, sizeof(*p));
}

void hvplat_nmi_dispatch(void)
{
	unsigned cpu = hvplat_cpu();
	void (*fn)(void *arg);

	if (cpu >= ACPI_MAX_CPUS || !(fn = nmi_work[cpu].fn)) {
		printf("# unexpected NMI on CPU %u\n", cpu);
		return;
	}
	nmi_work[cpu].fn = NULL;
	fn(nmi_work[cpu].arg);
	__atomic_store_n(&nmi_work[cpu].done, 1, __ATOMIC_RELEASE);
}

int hvplat_run_on(unsigned cpu, void (*fn)(void *arg), void *arg)
{
	uint64_t end;

	if (cpu == hvplat_cpu()) {
		fn(arg);
		return 0;
	}
	/* Only APs that smp.c started and parked (cli; hlt: an NMI still gets through). */
	if (cpu >= ncpus || cpu >= ACPI_MAX_CPUS || cpus[cpu].state != CPU_DONE || !acpi.lapic_addr)
		return -1;
	if (!nmi_installed) {
		gate_set(2, hvplat_nmi_stub);
		nmi_installed = 1;
	}
	nmi_work[cpu].arg = arg;
	nmi_work[cpu].done = 0;
	__atomic_store_n(&nmi_work[cpu].fn, fn, __ATOMIC_RELEASE);
	mmio_write32(acpi.lapic_addr + LAPIC_ICR_HI, cpus[cpu].apic_id << 24);
	mmio_write32(acpi.lapic_addr + LAPIC_ICR_LO, ICR_NMI);
	end = timer_deadline_us(2000000);
	while (!__atomic_load_n(&nmi_work[cpu].done, __ATOMIC_ACQUIRE) && !timer_expired(end))
		cpu_relax();
	if (!nmi_work[cpu].done) {
		nmi_work[cpu].fn = NULL;
		return -1;
	}
	return 0;
}

void *hvplat_gpa_to_va(uint64_t gpa, size_t len)
{
	if (!len || gpa >= (4ull << 30) || len > (4ull << 30) - gpa || !boot_range_is_ram(gpa, len))
		return NULL;
	return (void *)(uintptr_t)gpa;
}

unsigned hvplat_cpu(void)
{
	uint32_t apic = cpu_apic_id();

	for (unsigned i = 0; i < ncpus; i++)
		if (cpus[i].apic_id == apic)
			return i;
	return 0; /* before smp_start_all only the BSP runs */
}

unsigned hvplat_ncpus(void)
{
	return ncpus ? ncpus : 1;
}

/*
 * Before the first STI on a CPU: its local APIC software-enabled (an AP comes out of INIT with
 * it disabled, and then drops fixed interrupts), and once for all the 8259 PICs masked (the
 * firmware on PC machines leaves IRQ0 on vector 8, which would look like a #DF).
 */
static uint8_t irq_ready[ACPI_MAX_CPUS];
static int pic_masked;

static void irq_prepare(void)
{
	unsigned cpu = hvplat_cpu();
	uint32_t svr;

	if (cpu < ACPI_MAX_CPUS && irq_ready[cpu])
		return;
	if (!pic_masked) {
		outb(0x21, 0xff);
		outb(0xa1, 0xff);
		pic_masked = 1;
	}
	if (acpi.lapic_addr) {
		svr = mmio_read32(acpi.lapic_addr + LAPIC_SVR);
		mmio_write32(acpi.lapic_addr + LAPIC_SVR, (svr & ~0xffu) | 0x100 | SPURIOUS_VECTOR);
	}
	gp_filter_install();
	if (cpu < ACPI_MAX_CPUS)
		irq_ready[cpu] = 1;
}

int hvplat_irq_register(uint8_t vector, hvplat_irq_fn fn, void *arg)
{
	unsigned s;

	if (vector < 32 || vector == SPURIOUS_VECTOR || !acpi.lapic_addr)
		return -1;
	for (s = 0; s < IRQ_SLOTS; s++)
		if (!slots[s].fn || slots[s].vector == vector)
			break;
	if (s == IRQ_SLOTS)
		return -1;
	gp_filter_install();
	slots[s].vector = vector;
	slots[s].arg = arg;
	slots[s].fn = fn;
	gate_set(vector, slot_stub[s]);
	irq_prepare();
	return 0;
}

void hvplat_irq_dispatch(unsigned slot)
{
	unsigned cpu = hvplat_cpu();

	if (slot < IRQ_SLOTS && slots[slot].fn) {
		if (cpu < ACPI_MAX_CPUS)
			slots[slot].count[cpu]++;
		slots[slot].fn(slots[slot].arg, slots[slot].vector);
	}
	mmio_write32(acpi.lapic_addr + LAPIC_EOI, 0);
}

uint64_t hvplat_irq_count(uint8_t vector)
{
	unsigned cpu = hvplat_cpu();

	for (unsigned s = 0; s < IRQ_SLOTS; s++)
		if (slots[s].fn && slots[s].vector == vector && cpu < ACPI_MAX_CPUS)
			return slots[s].count[cpu];
	return 0;
}

/*
 * Interrupts are only ever enabled here, so handlers never interrupt client code. A short
 * open window (no HLT: with no timer armed nothing would wake us if the host never signals).
 */
void hvplat_wait(void)
{
	uint64_t end = timer_deadline_us(20);

	irq_prepare();
	__asm__ volatile("sti" ::: "memory");
	do
		cpu_relax();
	while (!timer_expired(end));
	__asm__ volatile("cli" ::: "memory");
}

uint64_t hvplat_now_ns(void)
{
	uint64_t t = rdtsc(), khz = tsc_khz ? tsc_khz : 1;

	/* No 128-bit division without libgcc: split it. */
	return t / khz * 1000000u + t % khz * 1000000u / khz;
}

uint64_t hvplat_rdtsc(void)
{
	return rdtsc();
}

void hvplat_log(const char *fmt, ...)
{
	char line[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	printf("# %s\n", line);
}
