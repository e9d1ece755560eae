/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Hyper-V hypervisor interface (TLFS) as seen by a Linux 6.1 guest: CPUID leaves, synthetic MSR
 * numbers and bit fields, hypercall control word, status codes and the wire structures the host
 * reads from or writes into guest memory. Values: shared/spec/hyperv-interface-and-vmbus.md.
 */
#ifndef VIRIDIAN_HV_HV_PROTO_H
#define VIRIDIAN_HV_HV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define HV_PAGE_SIZE 4096u
#define HV_PAGE_MASK (~(uint64_t)(HV_PAGE_SIZE - 1))

/* CPUID leaves (spec §1.2). */
#define HV_CPUID_VENDOR 0x40000000u
#define HV_CPUID_INTERFACE 0x40000001u
#define HV_CPUID_VERSION 0x40000002u
#define HV_CPUID_FEATURES 0x40000003u
#define HV_CPUID_HINTS 0x40000004u
#define HV_CPUID_LIMITS 0x40000005u
#define HV_CPUID_HW_FEATURES 0x40000006u
#define HV_CPUID_NESTED 0x4000000Au
#define HV_CPUID_SIG_EBX 0x7263694Du /* "Micr" */
#define HV_CPUID_SIG_ECX 0x666F736Fu /* "osof" */
#define HV_CPUID_SIG_EDX 0x76482074u /* "t Hv" */
#define HV_CPUID_INTERFACE_HV1 0x31237648u /* "Hv#1" */

/* 0x40000003.EAX (privileges, group A). */
#define HV_PRIV_VP_RUNTIME (1u << 0)
#define HV_PRIV_TIME_REF_COUNT (1u << 1)
#define HV_PRIV_SYNIC (1u << 2)
#define HV_PRIV_SYNTIMER (1u << 3)
#define HV_PRIV_APIC_ACCESS (1u << 4)
#define HV_PRIV_HYPERCALL (1u << 5)
#define HV_PRIV_VP_INDEX (1u << 6)
#define HV_PRIV_RESET (1u << 7)
#define HV_PRIV_REFERENCE_TSC (1u << 9)
#define HV_PRIV_GUEST_IDLE (1u << 10)
#define HV_PRIV_FREQUENCY_MSRS (1u << 11)
#define HV_PRIV_REENLIGHTENMENT (1u << 13)
#define HV_PRIV_TSC_INVARIANT (1u << 15)
/* 0x40000003.EBX (group B). */
#define HV_PRIVB_PARTITION_ID (1u << 1)
#define HV_PRIVB_POST_MESSAGES (1u << 4)
#define HV_PRIVB_SIGNAL_EVENTS (1u << 5)
#define HV_PRIVB_CPU_MANAGEMENT (1u << 12)
#define HV_PRIVB_EXT_HYPERCALLS (1u << 20)
#define HV_PRIVB_ISOLATION (1u << 22)
/* 0x40000003.EDX (group D). */
#define HV_FEAT_FREQUENCY_MSRS (1u << 8)
#define HV_FEAT_CRASH_MSRS (1u << 10)
#define HV_FEAT_STIMER_DIRECT (1u << 19)
/* 0x40000004.EAX (hints). */
#define HV_HINT_REMOTE_TLB_FLUSH (1u << 2)
#define HV_HINT_APIC_ACCESS (1u << 3)
#define HV_HINT_RELAXED_TIMING (1u << 5)
#define HV_HINT_DEPRECATING_AEOI (1u << 9)
#define HV_HINT_CLUSTER_IPI (1u << 10)

/* Synthetic MSRs (spec §2.1). */
#define HV_MSR_GUEST_OS_ID 0x40000000u
#define HV_MSR_HYPERCALL 0x40000001u
#define HV_MSR_VP_INDEX 0x40000002u
#define HV_MSR_RESET 0x40000003u
#define HV_MSR_VP_RUNTIME 0x40000010u
#define HV_MSR_TIME_REF_COUNT 0x40000020u
#define HV_MSR_REFERENCE_TSC 0x40000021u
#define HV_MSR_TSC_FREQUENCY 0x40000022u
#define HV_MSR_APIC_FREQUENCY 0x40000023u
#define HV_MSR_VP_ASSIST_PAGE 0x40000073u
#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SVERSION 0x40000081u
#define HV_MSR_SIEFP 0x40000082u
#define HV_MSR_SIMP 0x40000083u
#define HV_MSR_EOM 0x40000084u
#define HV_MSR_SINT0 0x40000090u
#define HV_MSR_SINT15 0x4000009Fu
#define HV_MSR_STIMER0_CONFIG 0x400000B0u /* CONFIG n = B0 + 2n, COUNT n = B1 + 2n */
#define HV_MSR_STIMER3_COUNT 0x400000B7u
#define HV_MSR_CRASH_P0 0x40000100u
#define HV_MSR_CRASH_P4 0x40000104u
#define HV_MSR_CRASH_CTL 0x40000105u
#define HV_MSR_TSC_INVARIANT_CONTROL 0x40000118u
/* The range the VMM's KVM MSR filter sends to user space (spec §9.2). */
#define HV_MSR_RANGE_FIRST 0x40000000u
#define HV_MSR_RANGE_LAST 0x400001FFu

#define HV_HYPERCALL_ENABLE (1ull << 0)
#define HV_HYPERCALL_LOCKED (1ull << 1)
#define HV_HYPERCALL_RSVD 0xFFCull /* bits 11:2 */
#define HV_PAGE_MSR_ENABLE (1ull << 0) /* SIMP, SIEFP, REFERENCE_TSC, VP_ASSIST */
#define HV_PAGE_MSR_LOW_BITS 0xFFEull /* bits 11:1: preserved for SIMP/SIEFP/REF_TSC */
#define HV_SCONTROL_ENABLE (1ull << 0)
#define HV_SVERSION 1u
#define HV_SINT_VECTOR_MASK 0xFFull
#define HV_SINT_MASKED (1ull << 16)
#define HV_SINT_AUTO_EOI (1ull << 17)
#define HV_SINT_POLLING (1ull << 18)
#define HV_SINT_VALID_BITS \
	(HV_SINT_VECTOR_MASK | HV_SINT_MASKED | HV_SINT_AUTO_EOI | HV_SINT_POLLING)
#define HV_SINT_RESET HV_SINT_MASKED
#define HV_SYNIC_FIRST_VALID_VECTOR 16u
#define HV_SINT_COUNT 16u
#define HV_CRASH_CTL_NOTIFY (1ull << 63)
#define HV_CRASH_CTL_NOTIFY_MSG (1ull << 62)
#define HV_TSC_INVARIANT_ENABLE (1ull << 0)
#define HV_APIC_FREQUENCY_HZ 1000000000ull /* KVM's in-kernel LAPIC bus clock (§9.7) */

/* STIMERn_CONFIG (§2.4). */
#define HV_STIMER_COUNT 4u
#define HV_STIMER_ENABLE (1ull << 0)
#define HV_STIMER_PERIODIC (1ull << 1)
#define HV_STIMER_LAZY (1ull << 2)
#define HV_STIMER_AUTO_ENABLE (1ull << 3)
#define HV_STIMER_VECTOR_SHIFT 4
#define HV_STIMER_DIRECT (1ull << 12)
#define HV_STIMER_SINTX_SHIFT 16
#define HV_STIMER_VALID_BITS 0xF1FFFull /* bits 12:0 and 19:16 */

/* Hypercall control word in RCX (§3.1). */
#define HV_HC_CODE_MASK 0xFFFFull
#define HV_HC_FAST (1ull << 16)
#define HV_HC_VARHEAD_SHIFT 17
#define HV_HC_VARHEAD_MASK 0x3FFull
#define HV_HC_REP_COUNT_SHIFT 32
#define HV_HC_REP_START_SHIFT 48
#define HV_HC_REP_MASK 0xFFFull
#define HV_HC_RSVD_MASK ((0x1Full << 27) | (0xFull << 44) | (0xFull << 60))
#define HV_HC_REPS_DONE_SHIFT 32

#define HVCALL_POST_MESSAGE 0x005Cu
#define HVCALL_SIGNAL_EVENT 0x005Du

/* Status codes returned in RAX bits 15:0. */
#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT 4
#define HV_STATUS_INVALID_PARAMETER 5
#define HV_STATUS_ACCESS_DENIED 6
#define HV_STATUS_OPERATION_DENIED 8
#define HV_STATUS_INSUFFICIENT_MEMORY 11
#define HV_STATUS_INVALID_PORT_ID 17
#define HV_STATUS_INVALID_CONNECTION_ID 18
#define HV_STATUS_INSUFFICIENT_BUFFERS 19

/* SynIC messages (§4.2). */
#define HV_MESSAGE_SIZE 256u
#define HV_MESSAGE_PAYLOAD_MAX 240u
#define HV_MESSAGE_FLAG_PENDING 0x01u
#define HVMSG_NONE 0u
#define HVMSG_TIMER_EXPIRED 0x80000010u
#define HVMSG_HYPERVISOR_FIRST 0x80000000u /* guests may not post these types */
#define HV_EVENT_FLAGS_PER_SINT 2048u
#define HV_CONNECTION_ID_MASK 0x00FFFFFFu
#define VMBUS_MESSAGE_SINT 2u

struct hv_message_header {
	uint32_t message_type;
	uint8_t payload_size;
	uint8_t message_flags;
	uint16_t reserved;
	uint64_t sender; /* port / connection ID; Linux ignores it */
};

struct hv_message {
	struct hv_message_header header;
	uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
};

/* HvPostMessage input block (§3.3). */
struct hv_input_post_message {
	uint32_t connection_id;
	uint32_t reserved;
	uint32_t message_type;
	uint32_t payload_size;
	uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
};

/* Reference TSC page (§2.3). */
struct hv_ref_tsc_page {
	uint32_t sequence; /* 0 = invalid: the guest falls back to TIME_REF_COUNT */
	uint32_t reserved;
	uint64_t scale; /* 64.64 fixed point, 100 ns ticks per TSC tick */
	int64_t offset; /* 100 ns ticks */
};

_Static_assert(sizeof(struct hv_message_header) == 16, "hv_message_header");
_Static_assert(offsetof(struct hv_message_header, payload_size) == 4, "payload_size");
_Static_assert(offsetof(struct hv_message_header, message_flags) == 5, "message_flags");
_Static_assert(offsetof(struct hv_message_header, sender) == 8, "sender");
_Static_assert(sizeof(struct hv_message) == HV_MESSAGE_SIZE, "hv_message");
_Static_assert(offsetof(struct hv_message, payload) == 16, "hv_message payload");
_Static_assert(sizeof(struct hv_input_post_message) == 256, "hv_input_post_message");
_Static_assert(offsetof(struct hv_input_post_message, message_type) == 8, "post message_type");
_Static_assert(offsetof(struct hv_input_post_message, payload_size) == 12, "post payload_size");
_Static_assert(offsetof(struct hv_input_post_message, payload) == 16, "post payload");
_Static_assert(sizeof(struct hv_ref_tsc_page) == 24, "hv_ref_tsc_page");
_Static_assert(offsetof(struct hv_ref_tsc_page, scale) == 8, "tsc scale");
_Static_assert(offsetof(struct hv_ref_tsc_page, offset) == 16, "tsc offset");
_Static_assert(HV_SINT_COUNT *HV_MESSAGE_SIZE == HV_PAGE_SIZE, "SIM page = 16 slots");
_Static_assert(HV_SINT_COUNT *HV_EVENT_FLAGS_PER_SINT / 8 == HV_PAGE_SIZE, "SIEF page");

#endif
