/*
 * hv: the hypervisor interface as a child partition sees it (spec §1-3): CPUID leaves, guest
 * OS ID, hypercall page, VP index, hypercall error statuses, reserved MSR bits, reference time.
 * Needs a Hyper-V host (viridian run under KVM): explicit only, never part of a QEMU run.
 */
#include <stdint.h>

#include "arch/x86.h"
#include "hv/tguest_hv.h"
#include "hv/winhv.h"
#include "lib/printf.h"
#include "pvh.h"
#include "scenario.h"
#include "smp.h"
#include "tap.h"
#include "timer.h"

#define HV_LINES 11u

static unsigned int hv_count(void)
{
	return HV_LINES;
}

static uint16_t call_status(uint64_t control, uint64_t in, uint64_t out)
{
	return winhv_status(hvplat_hypercall(control, in, out));
}

/* Highest end of RAM in the memory map: a GPA past it is outside guest RAM. */
static uint64_t ram_end(void)
{
	uint64_t end = 0;

	for (unsigned i = 0; i < boot.memmap_count; i++)
		if (boot.memmap[i].addr + boot.memmap[i].size > end)
			end = boot.memmap[i].addr + boot.memmap[i].size;
	return end;
}

static void check_time(void)
{
	uint64_t t0, t1, prev, c0, c1, ref_us, tsc_us;
	int mono = 1;

	c0 = rdtsc();
	t0 = winhv_ref_time();
	prev = t0;
	/* ~100 ms, sampling the MSR now and then (each read is an exit). */
	while ((rdtsc() - c0) / tsc_khz < 100) {
		uint64_t t = winhv_ref_time();

		if (t < prev)
			mono = 0;
		prev = t;
		udelay(1000);
	}
	t1 = winhv_ref_time();
	c1 = rdtsc();
	ref_us = (t1 - t0) / 10;
	tsc_us = (c1 - c0) * 1000 / tsc_khz;
	if (!t0 || !t1)
		tap_not_ok("hv: TIME_REF_COUNT", "RDMSR 0x40000020 faulted or read 0");
	else if (!mono)
		tap_not_ok("hv: TIME_REF_COUNT monotonic", "went backwards");
	else if (ref_us * 100 < tsc_us * 99 || ref_us * 100 > tsc_us * 101)
		tap_not_ok("hv: TIME_REF_COUNT rate", "%lu us of reference time over %lu us of TSC",
			   (unsigned long)ref_us, (unsigned long)tsc_us);
	else
		tap_ok("hv: TIME_REF_COUNT monotonic, %lu us vs %lu us of TSC (within 1%%)",
		       (unsigned long)ref_us, (unsigned long)tsc_us);
}

static uint64_t tsc_page_time(const struct whv_tsc_page *p, int *ok)
{
	for (int tries = 0; tries < 100; tries++) {
		uint32_t seq = p->sequence;
		uint64_t scale, t;
		int64_t off;

		barrier();
		if (!seq) {
			*ok = 0;
			return 0;
		}
		scale = p->scale;
		off = p->offset;
		t = (uint64_t)(((unsigned __int128)rdtsc() * scale) >> 64) + (uint64_t)off;
		barrier();
		if (p->sequence == seq) {
			*ok = 1;
			return t;
		}
	}
	*ok = 0;
	return 0;
}

static void check_tsc_page(struct winhv *w)
{
	struct hvplat_pages pg;
	uint64_t a, b, c;
	int ok1, ok2;

	if (!(w->info.features_a & WHV_A_REFERENCE_TSC)) {
		tap_ok("hv: reference TSC page # SKIP not offered (0x40000003.EAX bit 9 clear)");
		return;
	}
	if (hvplat_pages_alloc(1, &pg) || hvplat_wrmsr(WHV_MSR_REFERENCE_TSC, pg.gpa | 1)) {
		tap_not_ok("hv: reference TSC page", "cannot enable it (no page or #GP)");
		return;
	}
	a = tsc_page_time(pg.va, &ok1);
	b = winhv_ref_time();
	c = tsc_page_time(pg.va, &ok2);
	hvplat_wrmsr(WHV_MSR_REFERENCE_TSC, 0);
	if (!ok1 || !ok2)
		tap_not_ok("hv: reference TSC page", "sequence 0 or never stable after enabling");
	else if (a > b + 200 || b > c + 200) /* 200 ticks = 20 us */
		tap_not_ok("hv: reference TSC page vs TIME_REF_COUNT",
			   "page %lu, MSR %lu, page %lu (100 ns units)", (unsigned long)a,
			   (unsigned long)b, (unsigned long)c);
	else
		tap_ok("hv: reference TSC page agrees with TIME_REF_COUNT within 20 us");
}

static struct {
	int ret;
	const char *why;
} vp_res[ACPI_MAX_CPUS];

static void vp_init_here(void *arg)
{
	unsigned cpu = hvplat_cpu();

	if (cpu < ACPI_MAX_CPUS)
		vp_res[cpu].ret = winhv_vp_init(arg, &vp_res[cpu].why);
}

/* VP_INDEX on every CPU (APs reached through hvplat_run_on) equals the CPU number. */
static void check_vp_index(struct winhv *w)
{
	unsigned bad = 0, n;
	char what[96] = "";

	smp_start_all();
	n = hvplat_ncpus();
	for (unsigned i = 0; i < n && i < WINHV_MAX_VPS && i < ACPI_MAX_CPUS; i++) {
		vp_res[i].ret = -1;
		vp_res[i].why = "did not run (AP not started?)";
		hvplat_run_on(i, vp_init_here, w);
		if (vp_res[i].ret || w->vp[i].vp_index != i) {
			if (!bad++)
				snprintf(what, sizeof(what), "CPU %u: %s, VP index %u", i,
					 vp_res[i].ret ? vp_res[i].why : "wrong",
					 w->vp[i].vp_index);
		}
	}
	if (bad || n < acpi.ncpus)
		tap_not_ok("hv: VP index", "%u of %u CPUs wrong (%u in the MADT); first: %s", bad,
			   n, acpi.ncpus, what);
	else
		tap_ok("hv: VP index equals the CPU number on all %u CPUs", n);
}

static void hv_run(void)
{
	struct winhv_info info;
	const char *why = NULL;
	struct winhv *w;
	uint64_t v = 0, in, end;
	unsigned lines = 0;

	if (winhv_detect(&info, &why)) {
		for (; lines < HV_LINES; lines++)
			tap_not_ok("hv", "not a Hyper-V child partition: %s", why);
		return;
	}
	tap_ok("hv: CPUID 0x40000000 \"Microsoft Hv\", max leaf %#x, features %#x/%#x/%#x",
	       info.max_leaf, info.features_a, info.privileges_b, info.features_d);
	if (!(info.hints & WHV_HINT_DEPRECATING_AEOI) || (info.hints & WHV_HINT_APIC_MSRS) ||
	    (info.privileges_b & WHV_B_EXT_HYPERCALLS) || !(info.features_a & WHV_A_SYNIC))
		tap_not_ok("hv: hints and privileges", "hints %#x privileges %#x features %#x",
			   info.hints, info.privileges_b, info.features_a);
	else
		tap_ok("hv: AEOI-deprecating hint set, no APIC-MSR hint, SynIC offered, no ext "
		       "hypercalls");
	w = tguest_hv(&why);
	if (!w) {
		for (lines = 2; lines < HV_LINES; lines++)
			tap_not_ok("hv", "WinHv init failed: %s", why);
		return;
	}
	if (hvplat_rdmsr(WHV_MSR_GUEST_OS_ID, &v) || v != WINHV_GUEST_OS_ID)
		tap_not_ok("hv: guest OS ID", "reads back %#lx", (unsigned long)v);
	else
		tap_ok("hv: guest OS ID reads back");
	tap_ok("hv: hypercall page at %#lx enabled and filled by the host",
	       (unsigned long)w->hcall.gpa);
	check_vp_index(w);

	in = winhv_input_gpa(w);
	if (call_status(0x0099, in, 0) != WHV_STATUS_INVALID_HYPERCALL_CODE ||
	    winhv_status(winhv_hypercall_fast(0x0099, 0, 0)) != WHV_STATUS_INVALID_HYPERCALL_CODE)
		tap_not_ok("hv: unknown hypercall", "status %u / %u", call_status(0x0099, in, 0),
			   winhv_status(winhv_hypercall_fast(0x0099, 0, 0)));
	else
		tap_ok("hv: unknown hypercall -> HV_STATUS_INVALID_HYPERCALL_CODE");

	end = ram_end();
	{
		uint16_t a = call_status(WHV_CALL_POST_MESSAGE, in + 4, 0);
		uint16_t b = call_status(WHV_CALL_POST_MESSAGE, in + 4000, 0);
		uint16_t c = call_status(WHV_CALL_POST_MESSAGE, (end + 0x100000) & ~0xfffull, 0);

		if (a != WHV_STATUS_INVALID_ALIGNMENT || b != WHV_STATUS_INVALID_ALIGNMENT ||
		    c != WHV_STATUS_INVALID_PARAMETER)
			tap_not_ok("hv: bad input GPAs",
				   "unaligned %u, page-crossing %u, outside RAM %u", a, b, c);
		else
			tap_ok("hv: input GPA unaligned / crossing a page / outside RAM -> 4 / 4 / 5");
	}
	{
		uint16_t a = call_status(WHV_CALL_POST_MESSAGE | (1ull << 30), in, 0);
		uint16_t b = call_status(WHV_CALL_POST_MESSAGE | (1ull << 62), in, 0);
		uint16_t c = call_status(WHV_CALL_POST_MESSAGE | (5ull << 32), in, 0);

		if (a != WHV_STATUS_INVALID_HYPERCALL_INPUT ||
		    b != WHV_STATUS_INVALID_HYPERCALL_INPUT ||
		    c != WHV_STATUS_INVALID_HYPERCALL_INPUT)
			tap_not_ok("hv: reserved control bits", "%u, %u, rep count %u", a, b, c);
		else
			tap_ok("hv: reserved control bits and a rep count on a simple call -> 3");
	}
	{
		int a = hvplat_wrmsr(WHV_MSR_SINT0 + 5, 0x05); /* vector < 16 */
		int b = hvplat_wrmsr(WHV_MSR_SINT0 + 5, 0x40 | (1ull << 40));
		int c = hvplat_wrmsr(WHV_MSR_VP_INDEX, 7);

		if (!a || !b || !c)
			tap_not_ok("hv: reserved MSR bits",
				   "no #GP: vector<16 %d, reserved %d, "
				   "VP_INDEX write %d",
				   a, b, c);
		else
			tap_ok("hv: SINT vector < 16, SINT reserved bits, VP_INDEX write -> #GP");
	}
	check_time();
	check_tsc_page(w);
}

static const struct scenario hv_scenario = {
	.name = "hv",
	.count = hv_count,
	.run = hv_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(hv_scenario);

/*
 * hv-crash: report a guest crash through the crash MSRs (spec §2.5). The host must log the
 * five parameters and stop the VM (viridian: exit code 4), so a passing run prints no result
 * line; reaching the line after the CTL write is the failure. Explicit only, run it alone.
 */
static unsigned int hv_crash_count(void)
{
	return 1;
}

static void hv_crash_run(void)
{
	struct winhv_info info;
	const char *why = NULL;
	uint64_t ctl = 0;

	if (winhv_detect(&info, &why)) {
		tap_not_ok("hv-crash", "not a Hyper-V child partition: %s", why);
		return;
	}
	if (!(info.features_d & WHV_D_CRASH_MSRS)) {
		tap_ok("hv-crash # SKIP crash MSRs not offered (0x40000003.EDX bit 10)");
		return;
	}
	if (hvplat_rdmsr(WHV_MSR_CRASH_CTL, &ctl) || !(ctl & (1ull << 63))) {
		tap_not_ok("hv-crash", "CRASH_CTL reads %#lx: no CRASH_NOTIFY capability",
			   (unsigned long)ctl);
		return;
	}
	printf("# hv-crash: P0..P4 = 0x1111111111111111 x 1..5, then CRASH_CTL notify: "
	       "the host must log them and stop the VM\n");
	for (unsigned i = 0; i < 5; i++)
		hvplat_wrmsr(WHV_MSR_CRASH_P0 + i, (i + 1) * 0x1111111111111111ull);
	hvplat_wrmsr(WHV_MSR_CRASH_CTL, 1ull << 63);
	udelay(100000);
	tap_not_ok("hv-crash", "still running 100 ms after the CRASH_CTL notify write");
}

static const struct scenario hv_crash_scenario = {
	.name = "hv-crash",
	.count = hv_crash_count,
	.run = hv_crash_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(hv_crash_scenario);

/*
 * hv-bench: HvSignalEvent (fast) and an HvPostMessage echo round trip, in TSC cycles, next to
 * a bare port-I/O exit on the same host (issue 3's bench/hypercall). Medians of 7 runs of 200
 * calls, the bare exit measured between them. Prints the bench line on the serial port.
 */
#define BENCH_RUNS 7
#define BENCH_ITERS 200
#define BENCH_PORT 0x5659 /* next to the hypercall port: unassigned, exits to the VMM */

static unsigned int hv_bench_count(void)
{
	return 1;
}

static uint64_t median(uint64_t *v, unsigned n)
{
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];

			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[n / 2];
}

static uint64_t bench_bare(void)
{
	uint64_t t0 = rdtsc();

	for (unsigned i = 0; i < BENCH_ITERS; i++)
		outl(BENCH_PORT, i);
	return (rdtsc() - t0) / BENCH_ITERS;
}

static uint64_t bench_signal(void)
{
	uint64_t t0 = rdtsc();

	for (unsigned i = 0; i < BENCH_ITERS; i++)
		winhv_signal_event(0xABCDEu, 0);
	return (rdtsc() - t0) / BENCH_ITERS;
}

/* Post to the echo port and wait for the reply in this CPU's SIM slot (polled, then freed). */
static uint64_t bench_post(struct winhv *w, int *ok)
{
	struct whv_message *slot = (struct whv_message *)w->vp[hvplat_cpu()].simp.va + 2;
	uint64_t t0 = rdtsc();

	for (unsigned i = 0; i < BENCH_ITERS && *ok; i++) {
		unsigned spins = 0;

		if (winhv_post_message(w, 0x7001u, 1, &i, sizeof(i))) {
			*ok = 0;
			break;
		}
		while (!__atomic_load_n(&slot->header.message_type, __ATOMIC_ACQUIRE))
			if (++spins > 10000000) {
				*ok = 0;
				break;
			}
		__atomic_store_n(&slot->header.message_type, 0, __ATOMIC_SEQ_CST);
		hvplat_mb();
		if (slot->header.message_flags & WHV_MSG_FLAG_PENDING)
			hvplat_wrmsr(WHV_MSR_EOM, 0);
	}
	return (rdtsc() - t0) / BENCH_ITERS;
}

static void hv_bench_run(void)
{
	uint64_t bare[BENCH_RUNS], sig[BENCH_RUNS], post[BENCH_RUNS];
	const char *why = NULL;
	struct winhv *w = tguest_hv(&why);
	uint32_t probe = 0;
	int have_post;

	if (!w || tguest_hv_synic(&why)) {
		tap_not_ok("hv-bench", "setup failed: %s", why);
		return;
	}
	/* No handler while we poll the slot ourselves; interrupts stay closed (no hvplat_wait). */
	winhv_set_msg_handler(w, 2, NULL, NULL);
	have_post = winhv_post_message(w, 0x7001u, 1, &probe, sizeof(probe)) == 0;
	if (have_post) {
		int ok = 1;

		bench_post(w, &ok); /* drains the probe's reply too */
		have_post = ok;
	}
	for (unsigned r = 0; r < BENCH_RUNS; r++) {
		int ok = 1;

		bare[r] = bench_bare();
		sig[r] = bench_signal();
		post[r] = have_post ? bench_post(w, &ok) : 0;
		if (!ok)
			have_post = 0;
	}
	uint64_t b = median(bare, BENCH_RUNS), s = median(sig, BENCH_RUNS);

	if (!b)
		b = 1;

	printf("bench: hypercall ratio=%lu.%02lu goal<=1.2 ours=%lucycles peer=%lucycles (bare port-I/O "
	       "exit)\n",
	       (unsigned long)(s / b), (unsigned long)(s * 100 / b % 100), (unsigned long)s,
	       (unsigned long)b);
	if (have_post) {
		uint64_t p = median(post, BENCH_RUNS);

		printf("bench: hypercall-postmsg ratio=%lu.%02lu goal<=1.2 ours=%lucycles "
		       "peer=%lucycles (bare port-I/O exit)\n",
		       (unsigned long)(p / b), (unsigned long)(p * 100 / b % 100), (unsigned long)p,
		       (unsigned long)b);
	}
	tap_ok("hv-bench: HvSignalEvent %lu cycles, bare exit %lu cycles%s", (unsigned long)s,
	       (unsigned long)b, have_post ? "" : " (no echo port: no HvPostMessage figure)");
}

static const struct scenario hv_bench_scenario = {
	.name = "hv-bench",
	.count = hv_bench_count,
	.run = hv_bench_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(hv_bench_scenario);
