// SPDX-License-Identifier: GPL-2.0-only
/*
 * Synthetic timers (spec §2.4): STIMERn_CONFIG/COUNT per VP, each backed by a host timerfd on
 * CLOCK_MONOTONIC, served by one timer thread per partition (started on the first arm). On
 * expiry: message mode posts HVMSG_TIMER_EXPIRED to SINTx through the SynIC queue; direct
 * mode injects the configured vector. One-shot COUNT is an absolute reference time; periodic
 * COUNT is the period. Missed periods are skipped, not replayed in a burst.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "hv/hv_internal.h"
#include "hv/hv_msr.h"
#include "lib/log.h"

struct hv_timer_msg_payload {
	uint32_t timer_index;
	uint32_t reserved;
	uint64_t expiration_time;
	uint64_t delivery_time;
};
_Static_assert(sizeof(struct hv_timer_msg_payload) == 24, "timer message payload");

#define HV_STIMER_STOP_KEY UINT64_MAX

static unsigned hv_stimer_vector(uint64_t config)
{
	return (config >> HV_STIMER_VECTOR_SHIFT) & 0xFF;
}

static unsigned hv_stimer_sintx(uint64_t config)
{
	return (config >> HV_STIMER_SINTX_SHIFT) & 0xF;
}

static void *hv_stimer_thread(void *arg);

void hv_stimer_init(struct hv_partition *part)
{
	pthread_mutex_init(&part->timer_lock, NULL);
	part->timer_epfd = -1;
	part->timer_stopfd = -1;
}

void hv_stimer_destroy(struct hv_partition *part)
{
	if (part->timer_thread_started) {
		uint64_t one = 1;

		if (write(part->timer_stopfd, &one, sizeof(one)) != sizeof(one))
			log_error(HV_LOG, "cannot stop the synthetic timer thread");
		pthread_join(part->timer_thread, NULL);
	}
	for (unsigned i = 0; i < part->nvps; i++)
		for (unsigned n = 0; n < HV_STIMER_COUNT; n++)
			if (part->vps[i].st[n].fd >= 0)
				close(part->vps[i].st[n].fd);
	if (part->timer_epfd >= 0)
		close(part->timer_epfd);
	if (part->timer_stopfd >= 0)
		close(part->timer_stopfd);
	pthread_mutex_destroy(&part->timer_lock);
}

/* Starts the timer thread once. 0 or -errno. */
static int hv_stimer_thread_start(struct hv_partition *part)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = HV_STIMER_STOP_KEY};
	int ret = 0;

	pthread_mutex_lock(&part->timer_lock);
	if (part->timer_thread_started)
		goto out;
	part->timer_epfd = epoll_create1(EPOLL_CLOEXEC);
	part->timer_stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (part->timer_epfd < 0 || part->timer_stopfd < 0 ||
	    epoll_ctl(part->timer_epfd, EPOLL_CTL_ADD, part->timer_stopfd, &ev) < 0) {
		ret = -errno;
		goto out;
	}
	ret = -pthread_create(&part->timer_thread, NULL, hv_stimer_thread, part);
	if (!ret)
		part->timer_thread_started = true;
out:
	pthread_mutex_unlock(&part->timer_lock);
	return ret;
}

static void hv_stimer_disarm(struct hv_stimer *st)
{
	struct itimerspec its = {0};

	st->armed = false;
	if (st->fd >= 0)
		timerfd_settime(st->fd, 0, &its, NULL);
}

/* Programs the timerfd for st->expiry (reference time) from now. */
static void hv_stimer_program(struct hv_partition *part, unsigned vp, unsigned n)
{
	struct hv_stimer *st = &part->vps[vp].st[n];
	uint64_t now = hv_ref_time_now(part, vp);
	uint64_t ns = st->expiry > now ? (st->expiry - now) * 100 : 1;
	struct itimerspec its = {
		.it_value = {.tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull}};

	if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
		its.it_value.tv_nsec = 1; /* 0 would disarm */
	if (st->fd < 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)vp << 2 | n};

		if (hv_stimer_thread_start(part) < 0)
			goto fail;
		st->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (st->fd < 0)
			goto fail;
		if (epoll_ctl(part->timer_epfd, EPOLL_CTL_ADD, st->fd, &ev) < 0) {
			close(st->fd);
			st->fd = -1;
			goto fail;
		}
	}
	if (timerfd_settime(st->fd, 0, &its, NULL) < 0)
		goto fail;
	st->armed = true;
	return;
fail:
	st->armed = false;
	log_warn_ratelimited(HV_LOG, "VP %u STIMER%u: cannot arm a host timer (%s)", vp, n,
			     strerror(errno));
}

/* (Re)starts or stops timer n after a CONFIG or COUNT write (vp->lock held). */
static void hv_stimer_update(struct hv_partition *part, unsigned vp, unsigned n)
{
	struct hv_stimer *st = &part->vps[vp].st[n];
	bool direct = st->config & HV_STIMER_DIRECT;

	if (!(st->config & HV_STIMER_ENABLE) || st->count == 0 ||
	    (!direct && hv_stimer_sintx(st->config) == 0)) {
		hv_stimer_disarm(st);
		return;
	}
	if (st->config & HV_STIMER_PERIODIC)
		st->expiry = hv_ref_time_now(part, vp) + st->count;
	else
		st->expiry = st->count; /* absolute; in the past = fire now */
	hv_stimer_program(part, vp, n);
}

int hv_stimer_write_locked(struct hv_partition *part, unsigned vp, unsigned n, bool count,
			   uint64_t val)
{
	struct hv_stimer *st = &part->vps[vp].st[n];

	if (count) {
		st->count = val;
		/* COUNT 0 stops the timer; non-zero re-enables it with auto_enable. */
		if (val == 0)
			st->config &= ~HV_STIMER_ENABLE;
		else if (st->config & HV_STIMER_AUTO_ENABLE)
			st->config |= HV_STIMER_ENABLE;
	} else {
		if (val & ~HV_STIMER_VALID_BITS)
			return HV_MSR_GP;
		if ((val & HV_STIMER_ENABLE) && (val & HV_STIMER_DIRECT) &&
		    hv_stimer_vector(val) < HV_SYNIC_FIRST_VALID_VECTOR)
			return HV_MSR_GP;
		st->config = val; /* enable with COUNT 0 is kept but arms nothing */
	}
	hv_stimer_update(part, vp, n);
	return HV_MSR_OK;
}

void hv_stimer_reset_locked(struct hv_vp *v)
{
	for (unsigned n = 0; n < HV_STIMER_COUNT; n++) {
		hv_stimer_disarm(&v->st[n]);
		v->st[n].config = 0;
		v->st[n].count = 0;
		v->st[n].expiry = 0;
	}
}

/* Timer thread, vp->lock held: fire if due, then re-arm (periodic) or disable (one-shot). */
static void hv_stimer_expire_locked(struct hv_partition *part, unsigned vp, unsigned n)
{
	struct hv_stimer *st = &part->vps[vp].st[n];
	uint64_t now = hv_ref_time_now(part, vp);

	if (!st->armed)
		return; /* stopped or reprogrammed to later meanwhile */
	if (now < st->expiry) {
		hv_stimer_program(part, vp, n); /* host clock ran ahead of the reference time */
		return;
	}
	if (st->config & HV_STIMER_DIRECT) {
		if (part->cb.inject_interrupt)
			part->cb.inject_interrupt(part->cb.opaque, vp,
						  (uint8_t)hv_stimer_vector(st->config));
	} else {
		struct hv_message m;
		struct hv_timer_msg_payload p = {
			.timer_index = n, .expiration_time = st->expiry, .delivery_time = now};

		memset(&m, 0, sizeof(m));
		m.header.message_type = HVMSG_TIMER_EXPIRED;
		m.header.payload_size = sizeof(p);
		memcpy(m.payload, &p, sizeof(p));
		if (hv_synic_post_locked(part, vp, hv_stimer_sintx(st->config), &m) < 0)
			log_warn_ratelimited(HV_LOG, "VP %u STIMER%u: expiry message dropped", vp,
					     n);
	}
	if (st->config & HV_STIMER_PERIODIC) {
		st->expiry += st->count;
		if (st->expiry <= now)
			st->expiry = now + st->count; /* skip missed periods */
		hv_stimer_program(part, vp, n);
	} else {
		st->armed = false;
		st->config &= ~HV_STIMER_ENABLE;
	}
}

static void *hv_stimer_thread(void *arg)
{
	struct hv_partition *part = arg;
	struct epoll_event evs[16];

	for (;;) {
		int k = epoll_wait(part->timer_epfd, evs, 16, -1);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			log_error(HV_LOG, "synthetic timer thread: epoll_wait: %s",
				  strerror(errno));
			return NULL;
		}
		for (int i = 0; i < k; i++) {
			uint64_t key = evs[i].data.u64, ticks;
			unsigned vp = (unsigned)(key >> 2), n = key & 3;
			struct hv_vp *v;

			if (key == HV_STIMER_STOP_KEY)
				return NULL;
			v = hv_vp_get(part, vp);
			if (!v)
				continue;
			pthread_mutex_lock(&v->lock);
			if (v->st[n].fd >= 0 &&
			    read(v->st[n].fd, &ticks, sizeof(ticks)) == sizeof(ticks))
				hv_stimer_expire_locked(part, vp, n);
			pthread_mutex_unlock(&v->lock);
		}
	}
}
