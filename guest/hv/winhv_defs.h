/*
 * Hyper-V interface constants and layouts the guest side uses, transcribed from
 * shared/spec/hyperv-interface-and-vmbus.md §1-4 (not from src/hv: the guest checks the host).
 */
#ifndef TGUEST_HV_WINHV_DEFS_H
#define TGUEST_HV_WINHV_DEFS_H

#include <stdint.h>

/* CPUID (§1.2). */
#define WHV_CPUID_VENDOR 0x40000000u
#define WHV_CPUID_INTERFACE 0x40000001u
#define WHV_CPUID_VERSION 0x40000002u
#define WHV_CPUID_FEATURES 0x40000003u
#define WHV_CPUID_HINTS 0x40000004u
#define WHV_CPUID_LIMITS 0x40000005u
#define WHV_CPUID_MIN_MAX 0x40000005u
#define WHV_VENDOR_EBX 0x7263694Du /* "Micr" */
#define WHV_VENDOR_ECX 0x666F736Fu /* "osof" */
#define WHV_VENDOR_EDX 0x76482074u /* "t Hv" */
#define WHV_INTERFACE_HV1 0x31237648u /* "Hv#1" */

/* 0x40000003.EAX (group A). */
#define WHV_A_VP_RUNTIME (1u << 0)
#define WHV_A_TIME_REF_COUNT (1u << 1)
#define WHV_A_SYNIC (1u << 2)
#define WHV_A_SYNTIMER (1u << 3)
#define WHV_A_HYPERCALL (1u << 5)
#define WHV_A_VP_INDEX (1u << 6)
#define WHV_A_REFERENCE_TSC (1u << 9)
#define WHV_A_FREQUENCY_MSRS (1u << 11)
#define WHV_A_TSC_INVARIANT (1u << 15)
/* 0x40000003.EBX (group B): must be clear in a child partition (§1.3, §1.4). */
#define WHV_B_PARTITION_ID (1u << 1)
#define WHV_B_POST_MESSAGES (1u << 4)
#define WHV_B_SIGNAL_EVENTS (1u << 5)
#define WHV_B_CPU_MANAGEMENT (1u << 12)
#define WHV_B_EXT_HYPERCALLS (1u << 20)
#define WHV_B_ISOLATION (1u << 22)
/* 0x40000003.EDX (group D). */
#define WHV_D_FREQUENCY_MSRS (1u << 8)
#define WHV_D_CRASH_MSRS (1u << 10)
#define WHV_D_STIMER_DIRECT (1u << 19)
/* 0x40000004.EAX hints. */
#define WHV_HINT_APIC_MSRS (1u << 3)
#define WHV_HINT_DEPRECATING_AEOI (1u << 9)

/* MSRs (§2.1). */
#define WHV_MSR_GUEST_OS_ID 0x40000000u
#define WHV_MSR_HYPERCALL 0x40000001u
#define WHV_MSR_VP_INDEX 0x40000002u
#define WHV_MSR_TIME_REF_COUNT 0x40000020u
#define WHV_MSR_REFERENCE_TSC 0x40000021u
#define WHV_MSR_TSC_FREQUENCY 0x40000022u
#define WHV_MSR_APIC_FREQUENCY 0x40000023u
#define WHV_MSR_VP_ASSIST_PAGE 0x40000073u
#define WHV_MSR_SCONTROL 0x40000080u
#define WHV_MSR_SVERSION 0x40000081u
#define WHV_MSR_SIEFP 0x40000082u
#define WHV_MSR_SIMP 0x40000083u
#define WHV_MSR_EOM 0x40000084u
#define WHV_MSR_SINT0 0x40000090u
#define WHV_MSR_STIMER0_CONFIG 0x400000B0u /* CONFIG n = B0 + 2n, COUNT n = B1 + 2n */
#define WHV_MSR_STIMER0_COUNT 0x400000B1u
#define WHV_MSR_CRASH_P0 0x40000100u
#define WHV_MSR_CRASH_CTL 0x40000105u

#define WHV_SINT_COUNT 16u
#define WHV_SINT_MASKED (1ull << 16)
#define WHV_SINT_AUTO_EOI (1ull << 17)
#define WHV_SINT_POLLING (1ull << 18)
#define WHV_SIMP_ENABLE 1ull
#define WHV_SCONTROL_ENABLE 1ull
#define WHV_HYPERCALL_ENABLE 1ull

/* Synthetic timer config (§2.4). */
#define WHV_STIMER_ENABLE (1ull << 0)
#define WHV_STIMER_PERIODIC (1ull << 1)
#define WHV_STIMER_LAZY (1ull << 2)
#define WHV_STIMER_AUTO_ENABLE (1ull << 3)
#define WHV_STIMER_VECTOR_SHIFT 4
#define WHV_STIMER_DIRECT (1ull << 12)
#define WHV_STIMER_SINT_SHIFT 16

/* Hypercalls (§3). */
#define WHV_CALL_POST_MESSAGE 0x005Cu
#define WHV_CALL_SIGNAL_EVENT 0x005Du
#define WHV_CONTROL_FAST (1ull << 16)
#define WHV_CONTROL_VARHEAD_SHIFT 17
#define WHV_CONTROL_REP_COUNT_SHIFT 32
#define WHV_CONTROL_REP_START_SHIFT 48

#define WHV_STATUS_SUCCESS 0u
#define WHV_STATUS_INVALID_HYPERCALL_CODE 2u
#define WHV_STATUS_INVALID_HYPERCALL_INPUT 3u
#define WHV_STATUS_INVALID_ALIGNMENT 4u
#define WHV_STATUS_INVALID_PARAMETER 5u
#define WHV_STATUS_ACCESS_DENIED 6u
#define WHV_STATUS_INSUFFICIENT_MEMORY 11u
#define WHV_STATUS_INVALID_PORT_ID 17u
#define WHV_STATUS_INVALID_CONNECTION_ID 18u
#define WHV_STATUS_INSUFFICIENT_BUFFERS 19u

/* SynIC message slot (§4.2). */
#define WHV_MSG_SIZE 256u
#define WHV_MSG_PAYLOAD_MAX 240u
#define WHV_MSG_NONE 0u
#define WHV_MSG_VMBUS 1u
#define WHV_MSG_TIMER_EXPIRED 0x80000010u
#define WHV_MSG_FLAG_PENDING 0x01u

struct whv_message_header {
	uint32_t message_type;
	uint8_t payload_size;
	uint8_t message_flags;
	uint16_t reserved;
	uint64_t sender;
};

struct whv_message {
	struct whv_message_header header;
	uint8_t payload[WHV_MSG_PAYLOAD_MAX];
};

_Static_assert(sizeof(struct whv_message_header) == 16, "SynIC message header is 16 bytes");
_Static_assert(sizeof(struct whv_message) == WHV_MSG_SIZE, "SynIC message is 256 bytes");

/* HvPostMessage input (§3.3). */
struct whv_post_message_input {
	uint32_t connection_id;
	uint32_t reserved;
	uint32_t message_type;
	uint32_t payload_size;
	uint8_t payload[WHV_MSG_PAYLOAD_MAX];
} __attribute__((packed));

_Static_assert(sizeof(struct whv_post_message_input) == 256, "HvPostMessage input is 256 bytes");

/* Timer-expired message payload (§2.4). */
struct whv_timer_message {
	uint32_t timer_index;
	uint32_t reserved;
	uint64_t expiration_time;
	uint64_t delivery_time;
} __attribute__((packed));

/* Event flags: 2048 bits per SINT (§4.3). */
#define WHV_EVENT_FLAGS_BYTES 256u
#define WHV_EVENT_FLAGS_COUNT 2048u

/* Reference TSC page (§2.3). */
struct whv_tsc_page {
	volatile uint32_t sequence;
	uint32_t reserved;
	volatile uint64_t scale;
	volatile int64_t offset;
} __attribute__((packed));

#endif
