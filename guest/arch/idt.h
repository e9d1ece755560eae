#ifndef TGUEST_ARCH_IDT_H
#define TGUEST_ARCH_IDT_H

#include <stdint.h>

/* Register state pushed by the exception stubs in start.S, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

void idt_init(void);
void idt_load(void);
void trap_handler(struct trap_frame *f);

#endif
