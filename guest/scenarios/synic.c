/*
 * synic: SynIC setup on the boot CPU, message delivery through the host's echo port
 * (connection SYNIC_ECHO_CONN, enabled by the host for tests with hv_echo_port_enable) with the
 * msg_pending/EOM handshake, and HvSignalEvent statuses (spec §3.4, §4). Explicit only.
 */
#include <stdint.h>

#include "hv/tguest_hv.h"
#include "hv/winhv.h"
#include "lib/printf.h"
#include "scenario.h"
#include "smp.h"
#include "tap.h"

#define SYNIC_LINES 6u
#define SYNIC_ECHO_CONN 0x7001u
#define BURST 100u

static struct {
	unsigned n;
	uint32_t seq[BURST + 8];
	uint32_t type[BURST + 8];
} rx;

static unsigned int synic_count(void)
{
	return SYNIC_LINES;
}

static int on_msg(void *arg, unsigned cpu, const struct whv_message *m)
{
	(void)arg;
	(void)cpu;
	if (rx.n < BURST + 8) {
		memcpy(&rx.seq[rx.n], m->payload, 4);
		rx.type[rx.n] = m->header.message_type;
	}
	rx.n++;
	return 0;
}

static void wait_rx(unsigned n, uint64_t ms)
{
	uint64_t end = hvplat_now_ns() + ms * 1000000ull;

	while (rx.n < n && hvplat_now_ns() < end)
		hvplat_wait();
}

/* Per-CPU part, run on each AP through hvplat_run_on (interrupts open only in hvplat_wait). */
static struct {
	int synic;
	uint16_t status;
	volatile unsigned got;
	uint32_t payload;
} per_cpu[ACPI_MAX_CPUS];

static int on_msg_cpu(void *arg, unsigned cpu, const struct whv_message *m)
{
	(void)arg;
	if (cpu < ACPI_MAX_CPUS) {
		memcpy(&per_cpu[cpu].payload, m->payload, 4);
		per_cpu[cpu].got++;
	}
	return 0;
}

static void synic_here(void *arg)
{
	struct winhv *w = arg;
	unsigned cpu = hvplat_cpu();
	uint32_t v = 0x5100 + cpu;
	uint64_t end;

	if (cpu >= ACPI_MAX_CPUS)
		return;
	per_cpu[cpu].synic = !winhv_vp_init(w, NULL) && !tguest_hv_synic(NULL);
	if (!per_cpu[cpu].synic)
		return;
	per_cpu[cpu].status = winhv_post_message(w, SYNIC_ECHO_CONN, 1, &v, sizeof(v));
	end = hvplat_now_ns() + 500000000ull;
	while (!per_cpu[cpu].status && !per_cpu[cpu].got && hvplat_now_ns() < end)
		hvplat_wait();
}

static void synic_all_cpus(struct winhv *w, int have_echo)
{
	unsigned n, bad = 0, first = 0;

	smp_start_all();
	n = hvplat_ncpus();
	winhv_set_msg_handler(w, 2, on_msg_cpu, NULL);
	for (unsigned i = 0; i < n && i < ACPI_MAX_CPUS; i++) {
		memset(&per_cpu[i], 0, sizeof(per_cpu[i]));
		if (hvplat_run_on(i, synic_here, w))
			per_cpu[i].synic = 0;
		if (!per_cpu[i].synic || (have_echo && (per_cpu[i].status || per_cpu[i].got != 1 ||
							per_cpu[i].payload != 0x5100 + i))) {
			if (!bad++)
				first = i;
		}
	}
	winhv_set_msg_handler(w, 2, NULL, NULL);
	if (bad)
		tap_not_ok("synic: every CPU",
			   "%u of %u CPUs failed; CPU %u: synic %d status %u got %u", bad, n, first,
			   per_cpu[first].synic, per_cpu[first].status, per_cpu[first].got);
	else if (!have_echo)
		tap_ok("synic: SynIC enabled on all %u CPUs # SKIP no echo port for the replies",
		       n);
	else
		tap_ok("synic: on all %u CPUs the echo reply reached the sender's own SIM", n);
}

static void synic_run(void)
{
	const char *why = NULL;
	struct winhv *w = tguest_hv(&why);
	uint64_t irq0, eom0;
	uint32_t v = 0x1234;
	uint16_t st;
	unsigned lines = 0, cpu;
	int have_echo;

	if (!w || tguest_hv_synic(&why)) {
		for (; lines < SYNIC_LINES; lines++)
			tap_not_ok("synic", "setup failed: %s", why);
		return;
	}
	cpu = hvplat_cpu();
	tap_ok("synic: SIMP %#lx, SIEFP %#lx, SINT2 vector %#x, SCONTROL enabled on CPU %u",
	       (unsigned long)w->vp[cpu].simp.gpa, (unsigned long)w->vp[cpu].siefp.gpa, w->vector,
	       cpu);
	winhv_set_msg_handler(w, 2, on_msg, NULL);

	rx.n = 0;
	irq0 = hvplat_irq_count(w->vector);
	st = winhv_post_message(w, SYNIC_ECHO_CONN, 5, &v, sizeof(v));
	have_echo = st != WHV_STATUS_INVALID_CONNECTION_ID;
	if (!have_echo) {
		tap_ok("synic: echo port # SKIP host has no echo port at %#x", SYNIC_ECHO_CONN);
		tap_ok("synic: 100 posts in order # SKIP no echo port");
	} else {
		wait_rx(1, 1000);
		if (st || rx.n != 1 || rx.type[0] != 5 || rx.seq[0] != v ||
		    hvplat_irq_count(w->vector) == irq0)
			tap_not_ok("synic: echo port", "status %u, %u messages, type %u, irqs %lu",
				   st, rx.n, rx.n ? rx.type[0] : 0,
				   (unsigned long)(hvplat_irq_count(w->vector) - irq0));
		else
			tap_ok("synic: echo port answered HvPostMessage on SINT 2 with an interrupt");
		rx.n = 0;
		eom0 = w->vp[cpu].eoms;
		st = 0;
		/* No waiting between posts: the host queues behind the busy slot. */
		for (uint32_t i = 0; i < BURST && !st; i++)
			st = winhv_post_message(w, SYNIC_ECHO_CONN, 1, &i, sizeof(i));
		wait_rx(BURST, 2000);
		{
			unsigned bad = 0;

			for (unsigned i = 0; i < rx.n && i < BURST; i++)
				bad += rx.seq[i] != i;
			if (st || rx.n != BURST || bad || w->vp[cpu].eoms == eom0)
				tap_not_ok("synic: 100 posts",
					   "status %u, %u received, %u out of order, "
					   "%lu EOMs",
					   st, rx.n, bad, (unsigned long)(w->vp[cpu].eoms - eom0));
			else
				tap_ok("synic: 100 posts delivered in order, %lu EOMs",
				       (unsigned long)(w->vp[cpu].eoms - eom0));
		}
	}
	synic_all_cpus(w, have_echo);
	st = winhv_signal_event(0xABCDEu, 0);
	if (st != WHV_STATUS_INVALID_CONNECTION_ID)
		tap_not_ok("synic: HvSignalEvent unknown connection", "status %u", st);
	else
		tap_ok("synic: HvSignalEvent to an unknown connection -> 18");
	st = winhv_status(winhv_hypercall_fast(WHV_CALL_SIGNAL_EVENT, 1ull << 60, 0));
	if (st != WHV_STATUS_INVALID_HYPERCALL_INPUT)
		tap_not_ok("synic: HvSignalEvent reserved bits", "status %u", st);
	else
		tap_ok("synic: HvSignalEvent with reserved input bits -> 3");
	winhv_set_msg_handler(w, 2, NULL, NULL);
}

static const struct scenario synic_scenario = {
	.name = "synic",
	.count = synic_count,
	.run = synic_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(synic_scenario);
