/* SPDX-License-Identifier: GPL-2.0-only */
/* In-process guest harness and the hosted hvplat implementation (see harness.h, hvplat.h). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "hv/hv_cpuid.h"
#include "hv/hv_hypercall.h"
#include "hv/hv_msr.h"
#include "hvplat.h"
#include "lib/err.h"
#include "lib/util.h"

#define HARNESS_TSC_HZ 2000000000ull
#define HARNESS_DEFAULT_RAM (64ull << 20)
/* Client pages come from [ALLOC_BASE, ALLOC_BASE + 4 * 1024 pages * 4 KiB) at most. */
#define HARNESS_MAX_PAGES 16384u

struct harness_vp {
	struct harness *h;
	unsigned index;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t pending[4]; /* vectors raised by hv, under lock */
	uint64_t injected[256]; /* under lock */
	uint64_t taken[256]; /* handled on the VP thread (only that thread touches it) */
	pthread_t thread;
	bool started;
	int (*fn)(void *arg);
	void *arg;
	int ret;
};

struct harness {
	struct guest_mem gm;
	struct hv_partition *part;
	unsigned nvps;
	struct harness_vp vp[HARNESS_MAX_VPS];
	hvplat_irq_fn irq_fn[256];
	void *irq_arg[256];
	struct hv_cpuid_entry cpuid[HV_CPUID_NLEAVES];
	int ncpuid;
	pthread_mutex_t alloc_lock;
	unsigned alloc_pages; /* pages available to the allocator */
	unsigned in_use;
	uint8_t used[HARNESS_MAX_PAGES];
};

static __thread struct harness_vp *cur_vp;

static uint64_t harness_tsc(void *opaque, unsigned vp)
{
	(void)opaque;
	(void)vp;
	return (uint64_t)((unsigned __int128)util_now_ns() * HARNESS_TSC_HZ / 1000000000ull);
}

/* hv calls this with its SynIC lock held, from any thread: only mark and wake. */
static void harness_inject(void *opaque, unsigned vp, uint8_t vector)
{
	struct harness *h = opaque;
	struct harness_vp *v;

	if (vp >= h->nvps)
		return;
	v = &h->vp[vp];
	pthread_mutex_lock(&v->lock);
	v->pending[vector / 64] |= 1ull << (vector % 64);
	v->injected[vector]++;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

static void harness_crash(void *opaque, unsigned vp, const uint64_t params[5])
{
	(void)opaque;
	fprintf(stderr, "# harness: guest crash on vp %u: %#llx %#llx %#llx %#llx %#llx\n", vp,
		(unsigned long long)params[0], (unsigned long long)params[1],
		(unsigned long long)params[2], (unsigned long long)params[3],
		(unsigned long long)params[4]);
}

struct harness *harness_create(const struct harness_config *cfg)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct harness_config def = {0};
	struct hv_callbacks cb = {0};
	uint64_t ram;

	if (!h) {
		err_set("harness: out of memory");
		return NULL;
	}
	if (!cfg)
		cfg = &def;
	h->nvps = cfg->nvps ? cfg->nvps : 1;
	if (h->nvps > HARNESS_MAX_VPS) {
		err_set("harness: %u VPs asked for, at most %u", h->nvps, HARNESS_MAX_VPS);
		free(h);
		return NULL;
	}
	ram = cfg->ram_size ? cfg->ram_size : HARNESS_DEFAULT_RAM;
	if (ram < HARNESS_ALLOC_BASE + (1ull << 20)) {
		err_set("harness: ram_size must be at least 2 MiB");
		free(h);
		return NULL;
	}
	if (guest_mem_init(&h->gm, ram, 0) < 0) {
		free(h);
		return NULL;
	}
	cb.opaque = h;
	cb.inject_interrupt = harness_inject;
	cb.guest_crash = harness_crash;
	if (!cfg->no_tsc) {
		cb.read_guest_tsc = harness_tsc;
		cb.guest_tsc_hz = HARNESS_TSC_HZ;
	}
	for (unsigned i = 0; i < h->nvps; i++) {
		h->vp[i].h = h;
		h->vp[i].index = i;
		pthread_mutex_init(&h->vp[i].lock, NULL);
		pthread_cond_init(&h->vp[i].cond, NULL);
	}
	pthread_mutex_init(&h->alloc_lock, NULL);
	h->part = hv_partition_create(&h->gm, h->nvps, &cb);
	if (!h->part) {
		guest_mem_destroy(&h->gm);
		free(h);
		return NULL;
	}
	if (cfg->stimers) {
		/* The VMM chooses the CPUID table; this one also offers the timers. */
		struct hv_cpuid_config cc = {.nvps = h->nvps,
					     .ref_tsc = hv_partition_has_ref_tsc(h->part),
					     .freq_msrs = !cfg->no_tsc,
					     .stimers = true};

		h->ncpuid = hv_cpuid_fill(h->cpuid, HV_CPUID_NLEAVES, &cc);
	} else {
		h->ncpuid = hv_partition_cpuid_fill(h->part, h->cpuid, HV_CPUID_NLEAVES);
	}
	if (h->ncpuid < 0)
		h->ncpuid = 0;
	/* Only RAM that is one contiguous region from ALLOC_BASE is handed out. */
	for (unsigned p = 0; p < HARNESS_MAX_PAGES; p++) {
		uint64_t gpa = HARNESS_ALLOC_BASE + (uint64_t)p * HVPLAT_PAGE_SIZE;

		if (!guest_mem_ptr(&h->gm, HARNESS_ALLOC_BASE,
				   gpa + HVPLAT_PAGE_SIZE - HARNESS_ALLOC_BASE))
			break;
		h->alloc_pages = p + 1;
	}
	return h;
}

void harness_destroy(struct harness *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->nvps; i++)
		if (h->vp[i].started)
			harness_vp_join(h, i);
	if (cur_vp && cur_vp->h == h)
		cur_vp = NULL;
	hv_partition_destroy(h->part);
	guest_mem_destroy(&h->gm);
	for (unsigned i = 0; i < h->nvps; i++) {
		pthread_mutex_destroy(&h->vp[i].lock);
		pthread_cond_destroy(&h->vp[i].cond);
	}
	pthread_mutex_destroy(&h->alloc_lock);
	free(h);
}

struct hv_partition *harness_part(struct harness *h)
{
	return h->part;
}

struct guest_mem *harness_gm(struct harness *h)
{
	return &h->gm;
}

unsigned harness_nvps(const struct harness *h)
{
	return h->nvps;
}

void harness_bind(struct harness *h, unsigned vp)
{
	cur_vp = vp < h->nvps ? &h->vp[vp] : NULL;
}

void harness_unbind(void)
{
	cur_vp = NULL;
}

static void *harness_vp_main(void *arg)
{
	struct harness_vp *v = arg;

	cur_vp = v;
	v->ret = v->fn(v->arg);
	cur_vp = NULL;
	return NULL;
}

int harness_vp_start(struct harness *h, unsigned vp, int (*fn)(void *arg), void *arg)
{
	struct harness_vp *v;

	if (vp >= h->nvps || h->vp[vp].started)
		return -EINVAL;
	v = &h->vp[vp];
	v->fn = fn;
	v->arg = arg;
	v->ret = 0;
	if (pthread_create(&v->thread, NULL, harness_vp_main, v))
		return -EAGAIN;
	v->started = true;
	return 0;
}

int harness_vp_join(struct harness *h, unsigned vp)
{
	if (vp >= h->nvps || !h->vp[vp].started)
		return -EINVAL;
	pthread_join(h->vp[vp].thread, NULL);
	h->vp[vp].started = false;
	return h->vp[vp].ret;
}

uint64_t harness_injected_vector(struct harness *h, unsigned vp, uint8_t vector)
{
	uint64_t n;

	if (vp >= h->nvps)
		return 0;
	pthread_mutex_lock(&h->vp[vp].lock);
	n = h->vp[vp].injected[vector];
	pthread_mutex_unlock(&h->vp[vp].lock);
	return n;
}

uint64_t harness_injected(struct harness *h, unsigned vp)
{
	uint64_t n = 0;

	if (vp >= h->nvps)
		return 0;
	pthread_mutex_lock(&h->vp[vp].lock);
	for (unsigned i = 0; i < 256; i++)
		n += h->vp[vp].injected[i];
	pthread_mutex_unlock(&h->vp[vp].lock);
	return n;
}

unsigned harness_pages_in_use(struct harness *h)
{
	unsigned n;

	pthread_mutex_lock(&h->alloc_lock);
	n = h->in_use;
	pthread_mutex_unlock(&h->alloc_lock);
	return n;
}

int harness_guest_boot(struct harness *h, struct winhv *w, bool first, const char **why)
{
	(void)h;
	if (!cur_vp) {
		if (why)
			*why = "thread not bound to a VP";
		return -1;
	}
	if (first && winhv_init(w, why))
		return -1;
	if (winhv_vp_init(w, why))
		return -1;
	return winhv_synic_enable(w, 1u << 2, why);
}

/* --- hvplat, hosted --- */

static struct harness_vp *vp_or_die(const char *what)
{
	if (!cur_vp) {
		fprintf(stderr, "harness: %s called on a thread not bound to a VP\n", what);
		abort();
	}
	return cur_vp;
}

int hvplat_rdmsr(uint32_t msr, uint64_t *val)
{
	struct harness_vp *v = vp_or_die("rdmsr");

	*val = 0;
	return hv_msr_read(v->h->part, v->index, msr, val) == HV_MSR_OK ? 0 : -1;
}

int hvplat_wrmsr(uint32_t msr, uint64_t val)
{
	struct harness_vp *v = vp_or_die("wrmsr");

	return hv_msr_write(v->h->part, v->index, msr, val) == HV_MSR_OK ? 0 : -1;
}

void hvplat_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])
{
	struct harness_vp *v = vp_or_die("cpuid");

	(void)subleaf;
	out[0] = out[1] = out[2] = out[3] = 0;
	/* What the VMM puts in front of KVM: hypervisor-present plus hv's leaves. */
	if (leaf == 1) {
		out[2] = 1u << 31;
		return;
	}
	for (int i = 0; i < v->h->ncpuid; i++) {
		if (v->h->cpuid[i].leaf == leaf) {
			out[0] = v->h->cpuid[i].eax;
			out[1] = v->h->cpuid[i].ebx;
			out[2] = v->h->cpuid[i].ecx;
			out[3] = v->h->cpuid[i].edx;
			return;
		}
	}
}

uint64_t hvplat_hypercall(uint64_t control, uint64_t input, uint64_t output)
{
	struct harness_vp *v = vp_or_die("hypercall");
	struct hv_hypercall_regs r = {.rcx = control, .rdx = input, .r8 = output};

	return hv_hypercall(v->h->part, v->index, &r);
}

void hvplat_hypercall_page_set(void *va)
{
	(void)va; /* hosted calls go straight to hv_hypercall() */
}

int hvplat_pages_alloc(unsigned npages, struct hvplat_pages *out)
{
	struct harness *h = vp_or_die("pages_alloc")->h;
	unsigned run = 0, start = 0;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (!npages)
		return -1;
	pthread_mutex_lock(&h->alloc_lock);
	for (unsigned p = 0; p < h->alloc_pages; p++) {
		if (h->used[p]) {
			run = 0;
			continue;
		}
		if (!run)
			start = p;
		if (++run == npages) {
			memset(h->used + start, 1, npages);
			h->in_use += npages;
			ret = 0;
			break;
		}
	}
	pthread_mutex_unlock(&h->alloc_lock);
	if (ret)
		return -1;
	out->gpa = HARNESS_ALLOC_BASE + (uint64_t)start * HVPLAT_PAGE_SIZE;
	out->npages = npages;
	out->va = guest_mem_ptr(&h->gm, out->gpa, (uint64_t)npages * HVPLAT_PAGE_SIZE);
	memset(out->va, 0, (size_t)npages * HVPLAT_PAGE_SIZE);
	return 0;
}

void hvplat_pages_free(struct hvplat_pages *p)
{
	struct harness *h = vp_or_die("pages_free")->h;
	uint64_t first;

	if (!p->npages || p->gpa < HARNESS_ALLOC_BASE)
		return;
	first = (p->gpa - HARNESS_ALLOC_BASE) / HVPLAT_PAGE_SIZE;
	pthread_mutex_lock(&h->alloc_lock);
	for (uint64_t i = first; i < first + p->npages && i < h->alloc_pages; i++) {
		if (h->used[i]) {
			h->used[i] = 0;
			h->in_use--;
		}
	}
	pthread_mutex_unlock(&h->alloc_lock);
	memset(p, 0, sizeof(*p));
}

void *hvplat_gpa_to_va(uint64_t gpa, size_t len)
{
	return guest_mem_ptr(&vp_or_die("gpa_to_va")->h->gm, gpa, len);
}

unsigned hvplat_cpu(void)
{
	return vp_or_die("cpu")->index;
}

unsigned hvplat_ncpus(void)
{
	return vp_or_die("ncpus")->h->nvps;
}

struct run_on {
	void (*fn)(void *arg);
	void *arg;
};

static int run_on_main(void *arg)
{
	struct run_on *r = arg;

	r->fn(r->arg);
	return 0;
}

int hvplat_run_on(unsigned cpu, void (*fn)(void *arg), void *arg)
{
	struct harness_vp *v = vp_or_die("run_on");
	struct run_on r = {fn, arg};

	if (cpu == v->index) {
		fn(arg);
		return 0;
	}
	if (harness_vp_start(v->h, cpu, run_on_main, &r))
		return -1;
	return harness_vp_join(v->h, cpu);
}

int hvplat_irq_register(uint8_t vector, hvplat_irq_fn fn, void *arg)
{
	struct harness *h = vp_or_die("irq_register")->h;

	if (vector < 16)
		return -1;
	h->irq_arg[vector] = arg;
	h->irq_fn[vector] = fn;
	return 0;
}

uint64_t hvplat_irq_count(uint8_t vector)
{
	return vp_or_die("irq_count")->taken[vector];
}

/* Highest pending vector first, as a local APIC would deliver them. */
static int take_pending(struct harness_vp *v)
{
	int vec = -1;

	pthread_mutex_lock(&v->lock);
	for (int w = 3; w >= 0 && vec < 0; w--) {
		if (v->pending[w]) {
			int b = 63 - __builtin_clzll(v->pending[w]);

			v->pending[w] &= ~(1ull << b);
			vec = w * 64 + b;
		}
	}
	pthread_mutex_unlock(&v->lock);
	return vec;
}

static unsigned run_pending(struct harness_vp *v)
{
	unsigned n = 0;
	int vec;

	while ((vec = take_pending(v)) >= 0) {
		v->taken[vec]++;
		n++;
		if (v->h->irq_fn[vec])
			v->h->irq_fn[vec](v->h->irq_arg[vec], (uint8_t)vec);
	}
	return n;
}

void hvplat_wait(void)
{
	struct harness_vp *v = vp_or_die("wait");
	struct timespec ts;
	bool any;

	if (run_pending(v))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += 200000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&v->lock);
	any = v->pending[0] | v->pending[1] | v->pending[2] | v->pending[3];
	if (!any)
		pthread_cond_timedwait(&v->cond, &v->lock, &ts);
	pthread_mutex_unlock(&v->lock);
	run_pending(v);
}

uint64_t hvplat_now_ns(void)
{
	return util_now_ns();
}

uint64_t hvplat_rdtsc(void)
{
	return harness_tsc(NULL, 0);
}

void hvplat_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# guest: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
