/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared fixture for the hv unit tests: 16 MiB of guest RAM, a fake guest TSC, an IRQ log. */
#ifndef VIRIDIAN_TESTS_HV_TEST_H
#define VIRIDIAN_TESTS_HV_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>

#include "hv/hv.h"
#include "hv/hv_msr.h"
#include "hv/hv_proto.h"
#include "lib/util.h"
#include "vid/guest_mem.h"

#define T_RAM (16ull << 20)
#define T_TSC_HZ 2500000000ull /* 2.5 GHz fake guest TSC */
#define T_MAX_IRQ 4096

struct hv_fixture {
	struct guest_mem gm;
	struct hv_partition *part;
	pthread_mutex_t irq_lock;
	unsigned nirq;
	struct {
		unsigned vp;
		uint8_t vector;
	} irq[T_MAX_IRQ];
	unsigned ncrash;
	uint64_t crash[5];
};

static inline uint64_t hv_test_tsc(void *opaque, unsigned vp)
{
	(void)opaque;
	(void)vp;
	return (uint64_t)((unsigned __int128)util_now_ns() * T_TSC_HZ / 1000000000ull);
}

static inline void hv_test_inject(void *opaque, unsigned vp, uint8_t vector)
{
	struct hv_fixture *f = opaque;

	pthread_mutex_lock(&f->irq_lock);
	if (f->nirq < T_MAX_IRQ) {
		f->irq[f->nirq].vp = vp;
		f->irq[f->nirq].vector = vector;
	}
	f->nirq++;
	pthread_mutex_unlock(&f->irq_lock);
}

static inline void hv_test_crash(void *opaque, unsigned vp, const uint64_t params[5])
{
	struct hv_fixture *f = opaque;

	(void)vp;
	f->ncrash++;
	memcpy(f->crash, params, sizeof(f->crash));
}

static inline unsigned hv_test_nirq(struct hv_fixture *f)
{
	unsigned n;

	pthread_mutex_lock(&f->irq_lock);
	n = f->nirq;
	pthread_mutex_unlock(&f->irq_lock);
	return n;
}

/* Vector of the i-th injected interrupt (read under the lock: timers inject from a thread). */
static inline uint8_t hv_test_irq_vector(struct hv_fixture *f, unsigned i, unsigned *vp)
{
	uint8_t v;

	pthread_mutex_lock(&f->irq_lock);
	v = f->irq[i].vector;
	if (vp)
		*vp = f->irq[i].vp;
	pthread_mutex_unlock(&f->irq_lock);
	return v;
}

static inline int hv_test_setup_n(void **state, unsigned nvps, int with_tsc)
{
	struct hv_fixture *f = calloc(1, sizeof(*f));
	struct hv_callbacks cb = {
		.opaque = f,
		.inject_interrupt = hv_test_inject,
		.guest_crash = hv_test_crash,
		.read_guest_tsc = with_tsc ? hv_test_tsc : NULL,
		.guest_tsc_hz = with_tsc ? T_TSC_HZ : 0,
	};

	if (!f || guest_mem_init(&f->gm, T_RAM, 0) < 0)
		return -1;
	pthread_mutex_init(&f->irq_lock, NULL);
	f->part = hv_partition_create(&f->gm, nvps, &cb);
	if (!f->part)
		return -1;
	*state = f;
	return 0;
}

static inline int hv_test_setup(void **state)
{
	return hv_test_setup_n(state, 2, 1);
}

static inline int hv_test_teardown(void **state)
{
	struct hv_fixture *f = *state;

	hv_partition_destroy(f->part);
	guest_mem_destroy(&f->gm);
	pthread_mutex_destroy(&f->irq_lock);
	free(f);
	return 0;
}

#define T_SIMP_GPA 0x100000ull
#define T_SIEFP_GPA 0x101000ull
#define T_IN_GPA 0x102000ull
#define T_VEC 0xF3

/* Enables the SynIC of vp as Linux does (§2.2): SIMP, SIEFP, SINT2 = 0xF3, SCONTROL. */
static inline void hv_test_synic_on(struct hv_fixture *f, unsigned vp)
{
	uint64_t off = (uint64_t)vp * 0x10000;

	assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SIMP, (T_SIMP_GPA + off) | 1), HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SIEFP, (T_SIEFP_GPA + off) | 1),
			 HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SINT0 + 2, T_VEC), HV_MSR_OK);
	assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_SCONTROL, 1), HV_MSR_OK);
}

static inline struct hv_message *hv_test_slot(struct hv_fixture *f, unsigned vp, unsigned sint)
{
	return guest_mem_ptr(&f->gm, T_SIMP_GPA + (uint64_t)vp * 0x10000 + sint * 256ull, 256);
}

/* The guest side of message consumption (§4.2): copy, free the slot, EOM if pending. */
static inline int hv_test_consume(struct hv_fixture *f, unsigned vp, unsigned sint,
				  struct hv_message *out)
{
	struct hv_message *s = hv_test_slot(f, vp, sint);
	uint32_t type = __atomic_load_n(&s->header.message_type, __ATOMIC_ACQUIRE);

	if (type == 0)
		return 0;
	memcpy(out, s, sizeof(*out));
	out->header.message_type = type;
	assert_true(__atomic_compare_exchange_n(&s->header.message_type, &type, 0, 0,
						__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	if (__atomic_load_n(&s->header.message_flags, __ATOMIC_SEQ_CST) & HV_MESSAGE_FLAG_PENDING)
		assert_int_equal(hv_msr_write(f->part, vp, HV_MSR_EOM, 0), HV_MSR_OK);
	return 1;
}

#endif
