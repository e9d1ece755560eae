/*
 * Test guest entry: PVH 32-bit entry (Xen PVH ABI), switch to long mode with an
 * identity map of the first 4 GiB, exception stubs, and the real-mode AP trampoline.
 */
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/* PVH note: XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen", 32-bit physical entry. */
	.section .note.Xen, "a"
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.long pvh_start32

/* Identity map 0-4 GiB with 2 MiB pages; the top GiB (MMIO: LAPIC, IOAPIC) uncached. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + 0x3
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x3
	.quad pd + 0x1000 + 0x3
	.quad pd + 0x2000 + 0x3
	.quad pd + 0x3000 + 0x3
	.fill 508, 8, 0
pd:
	.set i, 0
	.rept 1536
	.quad (i << 21) | 0x83
	.set i, i + 1
	.endr
	.rept 512
	.quad (i << 21) | 0x9b
	.set i, i + 1
	.endr

	.section .data
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00af9a000000ffff	/* 0x18: 64-bit code */
gdt_end:
	.balign 8
gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt

	.section .text.entry, "ax"
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	mov %ebx, %esi			/* hvm_start_info physical address */
	xor %ebp, %ebp			/* 0: bootstrap processor */
	lgdt gdt_ptr
	ljmp $SEL_CODE32, $1f
1:	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	/* The loader zero-fills .bss per ELF, but do not rely on it. */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl
	jmp enter_long

	.globl ap_start32
ap_start32:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $1, %ebp			/* 1: application processor */

enter_long:
	mov $pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG | PE */
	mov %eax, %cr0
	ljmp $SEL_CODE64, $entry64

	.code64
entry64:
	mov $SEL_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	test %ebp, %ebp
	jnz 2f
	lea bsp_stack_top(%rip), %rsp
	mov %esi, %edi
	call kmain
	jmp 3f
2:	mov ap_stack_top(%rip), %rsp
	call ap_main
3:	cli
	hlt
	jmp 3b

/* Exception stubs: normalise to (vector, error code) and call trap_handler(frame). */
	.macro ISR_NOERR n
isr\n:
	pushq $0
	pushq $\n
	jmp isr_common
	.endm
	.macro ISR_ERR n
isr\n:
	pushq $\n
	jmp isr_common
	.endm

	.text
	ISR_NOERR 0
	ISR_NOERR 1
	ISR_NOERR 2
	ISR_NOERR 3
	ISR_NOERR 4
	ISR_NOERR 5
	ISR_NOERR 6
	ISR_NOERR 7
	ISR_ERR 8
	ISR_NOERR 9
	ISR_ERR 10
	ISR_ERR 11
	ISR_ERR 12
	ISR_ERR 13
	ISR_ERR 14
	ISR_NOERR 15
	ISR_NOERR 16
	ISR_ERR 17
	ISR_NOERR 18
	ISR_NOERR 19
	ISR_NOERR 20
	ISR_ERR 21
	ISR_NOERR 22
	ISR_NOERR 23
	ISR_NOERR 24
	ISR_NOERR 25
	ISR_NOERR 26
	ISR_NOERR 27
	ISR_NOERR 28
	ISR_ERR 29
	ISR_ERR 30
	ISR_NOERR 31
	ISR_NOERR 32			/* anything else (spurious, stray IRQ) */

isr_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	and $-16, %rsp
	call trap_handler
4:	cli
	hlt
	jmp 4b

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32
	.quad isr\n
	.endr

/*
 * AP trampoline, copied to a page below 1 MiB; the SIPI starts it in real mode at
 * CS = page << 8, IP = 0. Position-independent: everything is addressed via DS = CS.
 */
	.section .rodata.trampoline, "a"
	.code16
	.globl ap_tramp_start, ap_tramp_end
ap_tramp_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	lgdtl (tr_gdtr - ap_tramp_start)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl *(tr_far - ap_tramp_start)
	.balign 8
tr_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
	.balign 4
tr_far:
	.long ap_start32
	.word SEL_CODE32
ap_tramp_end:
	.code64

	.section .bss.stacks, "aw", @nobits
	.balign 16
	.skip 16384
	.globl bsp_stack_top
bsp_stack_top:

	.section .note.GNU-stack, "", @progbits
