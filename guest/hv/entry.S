/*
 * Freestanding hvplat helpers: MSR accesses that survive a #GP, the #GP filter that resumes
 * them, and interrupt stubs for the vectors hvplat_irq_register() hands out.
 */
	.text

/* int hvplat_rdmsr_raw(uint32_t msr (edi), uint64_t *val (rsi)): 0, or -1 after a #GP. */
	.globl hvplat_rdmsr_raw
hvplat_rdmsr_raw:
	mov %edi, %ecx
	.globl hvplat_rdmsr_insn
hvplat_rdmsr_insn:
	rdmsr
	shl $32, %rdx
	or %rdx, %rax
	mov %rax, (%rsi)
	xor %eax, %eax
	ret
	.globl hvplat_rdmsr_fixup
hvplat_rdmsr_fixup:
	movq $0, (%rsi)
	mov $-1, %eax
	ret

/* int hvplat_wrmsr_raw(uint32_t msr (edi), uint64_t val (rsi)): 0, or -1 after a #GP. */
	.globl hvplat_wrmsr_raw
hvplat_wrmsr_raw:
	mov %edi, %ecx
	mov %rsi, %rax
	mov %rsi, %rdx
	shr $32, %rdx
	.globl hvplat_wrmsr_insn
hvplat_wrmsr_insn:
	wrmsr
	xor %eax, %eax
	ret
	.globl hvplat_wrmsr_fixup
hvplat_wrmsr_fixup:
	mov $-1, %eax
	ret

/*
 * #GP gate: a fault on exactly one of the two MSR instructions above resumes at its fixup;
 * anything else goes on to the test guest's own #GP reporting (hvplat_gp_orig).
 * Stack on entry: error code, RIP, CS, RFLAGS, RSP, SS.
 */
	.globl hvplat_gp_entry
hvplat_gp_entry:
	push %rax
	push %rcx
	mov 24(%rsp), %rax		/* faulting RIP */
	lea hvplat_rdmsr_insn(%rip), %rcx
	cmp %rcx, %rax
	je 1f
	lea hvplat_wrmsr_insn(%rip), %rcx
	cmp %rcx, %rax
	je 2f
	pop %rcx
	pop %rax
	jmp *hvplat_gp_orig(%rip)
1:	lea hvplat_rdmsr_fixup(%rip), %rcx
	jmp 3f
2:	lea hvplat_wrmsr_fixup(%rip), %rcx
3:	mov %rcx, 24(%rsp)
	pop %rcx
	pop %rax
	add $8, %rsp			/* drop the error code */
	iretq

/*
 * Interrupt stubs, one per slot: save the caller-saved registers (the CPU aligned RSP to 16
 * and pushed 5 words; 9 more keep the call aligned), call hvplat_irq_dispatch(slot).
 */
	.macro IRQ_STUB n
	.globl hvplat_irq_stub\n
hvplat_irq_stub\n:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	mov $\n, %edi
	call hvplat_irq_dispatch
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	iretq
	.endm

	IRQ_STUB 0
	IRQ_STUB 1
	IRQ_STUB 2
	IRQ_STUB 3

/* NMI gate: work hvplat_run_on() queued for this CPU (same register discipline). */
	.globl hvplat_nmi_stub
hvplat_nmi_stub:
	push %rax
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	call hvplat_nmi_dispatch
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rax
	iretq

/* Spurious-interrupt vector of the local APIC: no EOI (Intel SDM 10.9). */
	.globl hvplat_spurious_stub
hvplat_spurious_stub:
	iretq

	.section .note.GNU-stack, "", @progbits
