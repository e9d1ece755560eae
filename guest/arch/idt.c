/* IDT with a handler for every exception: report on COM1, then power off. */
#include <stddef.h>
#include <stdint.h>

#include "arch/idt.h"
#include "arch/x86.h"
#include "lib/printf.h"
#include "power.h"
#include "tap.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));

_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes in long mode");

extern const uint64_t isr_table[33];

static struct idt_gate idt[256] __attribute__((aligned(16)));

static const char *const exc_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
	"#NP", "#SS", "#GP", "#PF", "res", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void idt_init(void)
{
	for (size_t i = 0; i < 256; i++) {
		uint64_t h = isr_table[i < 32 ? i : 32];

		idt[i].off_lo = (uint16_t)h;
		idt[i].sel = 0x18;
		idt[i].ist = 0;
		idt[i].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
		idt[i].off_mid = (uint16_t)(h >> 16);
		idt[i].off_hi = (uint32_t)(h >> 32);
		idt[i].zero = 0;
	}
	idt_load();
}

void idt_load(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};

	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void trap_handler(struct trap_frame *f)
{
	uint64_t cr2;
	const char *name = "irq";

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	if (f->vector < 32 && exc_names[f->vector])
		name = exc_names[f->vector];
	/* Do not wait on the console lock: the faulting CPU may hold it. */
	console_force_unlock();
	tap_fail_current("exception %s vector %lu error %#lx rip %#lx cr2 %#lx apic %u", name,
			 (unsigned long)f->vector, (unsigned long)f->error, (unsigned long)f->rip,
			 (unsigned long)cr2, cpu_apic_id());
	printf("# rax %#lx rbx %#lx rcx %#lx rdx %#lx rsi %#lx rdi %#lx rsp %#lx\n",
	       (unsigned long)f->rax, (unsigned long)f->rbx, (unsigned long)f->rcx,
	       (unsigned long)f->rdx, (unsigned long)f->rsi, (unsigned long)f->rdi,
	       (unsigned long)f->rsp);
	printf("Bail out! exception %s at rip %#lx\n", name, (unsigned long)f->rip);
	power_off();
}
