// SPDX-License-Identifier: GPL-2.0-only
/*
 * Channels served on the signalling VP's thread (chan.c): an idle echo channel answers inside
 * the guest's HvSignalEvent; two VP threads signalling one channel at once while its thread
 * also works (small host→guest ring: backlog, pending_send_sz) lose and duplicate nothing; and
 * closing/reopening the channel while both VPs keep signalling is safe (run it under ASan).
 */
#include <pthread.h>

#include "server_test.h"
#include "lib/log.h"
#include "vmbus/device.h"
#include "vsp/echo.h"

#define NWRITERS 2u
#define PER_WRITER 3000u
#define WINDOW 48u /* packets a writer keeps in flight */

struct fx {
	struct tf *f;
	struct vmbus_device *echo;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	x->f = tf_new();
	x->echo = vsp_echo_create();
	assert_non_null(x->echo);
	assert_int_equal(vmbus_server_add_device(x->f->srv, x->echo), 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	tf_free(x->f);
	vsp_echo_destroy(x->echo);
	free(x);
	return 0;
}

static void connect_echo(struct fx *x, struct vmbus_msg_offer *echo_offer)
{
	struct vmbus_msg_offer offers[TF_MAX_OFFERS];
	unsigned n;

	tf_connect(x->f);
	n = tf_request_offers(x->f, offers);
	for (unsigned i = 0; i < n; i++)
		if (guid_equal(&offers[i].if_instance, &x->echo->instance_id)) {
			*echo_offer = offers[i];
			return;
		}
	fail_msg("no echo offer");
}

/* HvSignalEvent from vp; thread-safe (tf_signal counts in a plain field). */
static uint16_t sig_vp(struct tf *f, unsigned vp, uint32_t conn_id)
{
	struct hv_hypercall_regs r = {.rcx = HVCALL_SIGNAL_EVENT | HV_HC_FAST, .rdx = conn_id};

	return (uint16_t)hv_hypercall(f->part, vp, &r);
}

/* ---- an idle channel answers inside the hypercall ---- */

static void test_inline_answer(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct gchan c;
	static uint8_t buf[8192];
	unsigned inline_answers = 0;

	connect_echo(x, &o);
	assert_int_equal(gchan_open(f, &c, &o, 8, 8, 0), 0);
	for (unsigned i = 0; i < 200; i++) {
		uint64_t v = i;
		uint32_t n;

		assert_int_equal(gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 1, i, NULL, 0, &v, 8),
				 0);
		/* No wait: on the inline path the echo is already in the ring. */
		n = gchan_read(f, &c, buf, sizeof(buf));
		if (n)
			inline_answers++;
		else
			n = gchan_read_wait(f, &c, buf, sizeof(buf), 2000);
		assert_int_equal(n, 24);
		assert_memory_equal(buf + 16, &v, 8);
	}
	print_message("# %u of 200 echoes answered inside HvSignalEvent\n", inline_answers);
	/* The channel thread may hold the channel now and then (its start, a spurious wake-up). */
	assert_true(inline_answers >= 150);
	gchan_close(f, &c);
}

/* ---- two VPs at once, channel thread busy too ---- */

struct shared {
	struct tf *f;
	struct gchan *c;
	pthread_mutex_t wlock; /* guest-side ring lock (Linux: the outbound ring spinlock) */
	unsigned inflight[NWRITERS];
	uint8_t seen[NWRITERS][PER_WRITER];
	unsigned got;
	bool stop; /* atomic */
	bool bad_status; /* atomic */
	const char *bad_echo; /* set by the reader (cmocka asserts belong to the main thread) */
};

/*
 * gchan_write for several guest VPs: the write under the guest's ring lock, the signal after
 * it is released and from the writer's own VP, as Linux does.
 */
static int mp_write(struct shared *s, unsigned vp, uint64_t id)
{
	struct gring *r = &s->c->out;
	struct vmbus_pkt_desc d = {.type = VMBUS_PKT_DATA_INBAND, .offset8 = 2, .len8 = 3};
	uint32_t wr, rd, used;
	uint64_t trailer;
	bool sig;

	pthread_mutex_lock(&s->wlock);
	wr = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_RELAXED);
	rd = __atomic_load_n(&r->ctrl->read_index, __ATOMIC_ACQUIRE);
	used = wr >= rd ? wr - rd : r->size - rd + wr;
	if (r->size - used <= 24 + 8) {
		pthread_mutex_unlock(&s->wlock);
		return -EAGAIN;
	}
	d.trans_id = id;
	gring_copy_in(r, wr, &d, 16);
	gring_copy_in(r, (wr + 16) % r->size, &id, 8);
	trailer = (uint64_t)wr << 32;
	gring_copy_in(r, (wr + 24) % r->size, &trailer, 8);
	__atomic_store_n(&r->ctrl->write_index, (wr + 32) % r->size, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	sig = !__atomic_load_n(&r->ctrl->interrupt_mask, __ATOMIC_SEQ_CST) &&
	      __atomic_load_n(&r->ctrl->read_index, __ATOMIC_SEQ_CST) == wr;
	pthread_mutex_unlock(&s->wlock);
	if (sig && sig_vp(s->f, vp, s->c->conn_id) != HV_STATUS_SUCCESS)
		__atomic_store_n(&s->bad_status, true, __ATOMIC_RELAXED);
	return 0;
}

struct writer {
	struct shared *s;
	unsigned vp;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct shared *s = w->s;
	uint64_t deadline = util_now_ns() + 10000000000ull;

	for (unsigned i = 0; i < PER_WRITER;) {
		if (util_now_ns() > deadline)
			break;
		if (__atomic_load_n(&s->inflight[w->vp], __ATOMIC_ACQUIRE) >= WINDOW ||
		    mp_write(s, w->vp, ((uint64_t)w->vp << 32) | i)) {
			tf_sleep_us(5);
			continue;
		}
		__atomic_fetch_add(&s->inflight[w->vp], 1, __ATOMIC_ACQ_REL);
		i++;
	}
	return NULL;
}

/*
 * Reader on a third thread: reads echoes and signals the host from VP 1 when it crossed the
 * host's pending_send_sz (gchan_read signals from VP 0: wrong thread for this test).
 */
static void *reader_main(void *arg)
{
	struct shared *s = arg;
	struct gring *r = &s->c->in;
	uint64_t deadline = util_now_ns() + 10000000000ull;

	while (s->got < NWRITERS * PER_WRITER && util_now_ns() < deadline) {
		uint32_t rd = __atomic_load_n(&r->ctrl->read_index, __ATOMIC_RELAXED);
		uint32_t wr = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_ACQUIRE);
		uint32_t newrd, pend, len;
		struct vmbus_pkt_desc d;
		uint64_t id;
		unsigned vp, idx;

		if (rd == wr) {
			tf_sleep_us(10);
			continue;
		}
		gring_copy_out(r, rd, &d, 16);
		len = d.len8 * 8u;
		if (len != 24) {
			s->bad_echo = "echo of the wrong length";
			break;
		}
		gring_copy_out(r, (rd + 16) % r->size, &id, 8);
		vp = (unsigned)(id >> 32);
		idx = (unsigned)id;
		if (d.trans_id != id || vp >= NWRITERS || idx >= PER_WRITER) {
			s->bad_echo = "echo with a wrong id or payload";
			break;
		}
		if (s->seen[vp][idx]) {
			s->bad_echo = "an echo came twice";
			break;
		}
		s->seen[vp][idx] = 1;
		s->got++;
		__atomic_fetch_sub(&s->inflight[vp], 1, __ATOMIC_ACQ_REL);
		newrd = (rd + len + 8) % r->size;
		__atomic_store_n(&r->ctrl->read_index, newrd, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		pend = __atomic_load_n(&r->ctrl->pending_send_sz, __ATOMIC_SEQ_CST);
		if (pend) {
			uint32_t w = __atomic_load_n(&r->ctrl->write_index, __ATOMIC_SEQ_CST);
			uint32_t used = w >= newrd ? w - newrd : r->size - newrd + w;
			uint32_t free_after = r->size - used, free_before = free_after - (len + 8);

			if (free_before <= pend && free_after > pend)
				sig_vp(s->f, 1, s->c->conn_id);
		}
		/* Slow reader now and then: the host→guest ring fills, the backlog forms. */
		if (s->got % 500 == 0)
			tf_sleep_us(300);
	}
	return NULL;
}

static void test_two_vps(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct gchan c;
	static struct shared s;
	struct writer w[NWRITERS];
	pthread_t wt[NWRITERS], rt;

	connect_echo(x, &o);
	/* One data page toward the guest: 128 echoes fill it, so the backlog path runs. */
	assert_int_equal(gchan_open(f, &c, &o, 4, 2, 0), 0);
	memset(&s, 0, sizeof(s));
	s.f = f;
	s.c = &c;
	pthread_mutex_init(&s.wlock, NULL);
	assert_int_equal(pthread_create(&rt, NULL, reader_main, &s), 0);
	for (unsigned i = 0; i < NWRITERS; i++) {
		w[i] = (struct writer){.s = &s, .vp = i};
		assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &w[i]), 0);
	}
	for (unsigned i = 0; i < NWRITERS; i++)
		pthread_join(wt[i], NULL);
	pthread_join(rt, NULL);
	if (s.bad_echo)
		fail_msg("%s", s.bad_echo);
	assert_int_equal(s.got, NWRITERS * PER_WRITER);
	assert_false(s.bad_status);
	gchan_close(f, &c);
	pthread_mutex_destroy(&s.wlock);
}

/* ---- close and reopen while two VPs keep signalling ---- */

struct spammer {
	struct tf *f;
	uint32_t conn_id;
	unsigned vp;
	bool stop; /* atomic */
};

static void *spam_main(void *arg)
{
	struct spammer *sp = arg;

	while (!__atomic_load_n(&sp->stop, __ATOMIC_ACQUIRE)) {
		/* After the close the connection is gone: any status is fine, no crash is. */
		sig_vp(sp->f, sp->vp, sp->conn_id);
		sched_yield();
	}
	return NULL;
}

static void test_close_while_signalled(void **state)
{
	struct fx *x = *state;
	struct tf *f = x->f;
	struct vmbus_msg_offer o;
	struct spammer sp[NWRITERS];
	pthread_t t[NWRITERS];
	static uint8_t buf[8192];
	struct gchan c;

	connect_echo(x, &o);
	for (unsigned i = 0; i < NWRITERS; i++) {
		sp[i] = (struct spammer){.f = f, .conn_id = o.connection_id, .vp = i};
		assert_int_equal(pthread_create(&t[i], NULL, spam_main, &sp[i]), 0);
	}
	for (unsigned round = 0; round < 20; round++) {
		uint64_t v = round;

		assert_int_equal(gchan_open(f, &c, &o, 4, 4, round % T_NVPS), 0);
		/* Packets in the ring while the spammers' signals drain it from both VPs. */
		for (unsigned i = 0; i < 20; i++) {
			assert_int_equal(
				gchan_write(f, &c, VMBUS_PKT_DATA_INBAND, 1, i, NULL, 0, &v, 8), 0);
			assert_int_equal(gchan_read_wait(f, &c, buf, sizeof(buf), 2000), 24);
		}
		gchan_close(f, &c);
	}
	for (unsigned i = 0; i < NWRITERS; i++) {
		__atomic_store_n(&sp[i].stop, true, __ATOMIC_RELEASE);
		pthread_join(t[i], NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_inline_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_vps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_while_signalled, setup, teardown),
	};

	log_set_level(LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
