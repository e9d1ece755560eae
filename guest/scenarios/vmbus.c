/*
 * vmbus: the VMBus client against the host's channel server (spec §6-8): version negotiation
 * (5.3 first, or vmbus.version=0xMMMMmmmm forced), offers, the echo device (viridian run
 * --device echo): vmbus.packets= inband packets (default 10000) and 100 GPA-direct packets
 * with checksums, close/re-open, UNLOAD and a new INITIATE_CONTACT. Explicit only.
 */
#include <stdint.h>

#include "hv/tguest_hv.h"
#include "lib/printf.h"
#include "scenario.h"
#include "tap.h"
#include "vmbus/vmbc.h"
#include "vmbus/vmbc_echo.h"

#define VMBUS_LINES 7u
#define RING_BYTES (64u * 1024)

static struct vmbc bus HVPLAT_NOINIT; /* vmbc_init sets it up */

static unsigned int vmbus_count(void)
{
	return VMBUS_LINES;
}

static void skip_rest(unsigned *lines, const char *why)
{
	for (; *lines < VMBUS_LINES; (*lines)++)
		tap_ok("vmbus: step %u # SKIP %s", *lines + 1, why);
}

static void fail_rest(unsigned *lines, const char *fmt, int code)
{
	for (; *lines < VMBUS_LINES; (*lines)++)
		tap_not_ok("vmbus", fmt, code);
}

static int echo_round(struct vmbc_channel *ch, unsigned count, uint64_t seed, const char *name)
{
	struct vmbc_echo_opts o = {.count = count, .max_len = 4000, .window = 8, .seed = seed};
	struct vmbc_echo_result r;
	int ret = vmbc_echo_inband(&bus, ch, &o, &r);

	if (ret)
		tap_not_ok(name, "%s", r.why);
	else
		tap_ok("%s: %u inband packets of 1..4000 bytes echoed intact", name, r.done);
	return ret;
}

static void vmbus_run(void)
{
	const char *why = NULL;
	struct winhv *w = tguest_hv(&why);
	uint32_t forced = (uint32_t)tguest_cmdline_u64("vmbus.version", 0);
	unsigned packets = (unsigned)tguest_cmdline_u64("vmbus.packets", 10000);
	struct vmbc_channel *ch;
	uint32_t st = 0;
	unsigned lines = 0;
	int ret;

	if (!w || tguest_hv_synic(&why)) {
		fail_rest(&lines, "Hyper-V setup failed (%d)", -1);
		return;
	}
	if (vmbc_init(&bus, w)) {
		fail_rest(&lines, "vmbc_init failed (%d)", VMBC_ENOMEM);
		return;
	}
	ret = vmbc_connect(&bus, forced);
	if (ret) {
		fail_rest(&lines, "INITIATE_CONTACT failed (%d)", ret);
		return;
	}
	tap_ok("vmbus: version %u.%u negotiated%s (message connection %u)", bus.version >> 16,
	       bus.version & 0xffff, forced ? " (forced)" : "", bus.msg_conn_id);
	lines++;
	ret = vmbc_request_offers(&bus);
	ch = ret ? NULL : vmbc_find(&bus, vmbc_echo_class, 0);
	if (ret || bus.bad_msgs) {
		tap_not_ok("vmbus: offers", "request failed (%d) or %lu bad messages", ret,
			   (unsigned long)bus.bad_msgs);
		lines++;
		fail_rest(&lines, "no offers (%d)", ret);
		return;
	}
	for (unsigned i = 0; i < VMBC_MAX_CHANNELS; i++)
		if (bus.chan[i].in_use)
			printf("# offer relid %u conn %#x sub %u\n", bus.chan[i].relid,
			       bus.chan[i].conn_id, bus.chan[i].offer.sub_channel_index);
	tap_ok("vmbus: %u offers, ALLOFFERS_DELIVERED%s", vmbc_channel_count(&bus),
	       ch ? ", echo device present" : "");
	lines++;
	if (!ch) {
		skip_rest(&lines, "no echo device offered (viridian run --device echo)");
		return;
	}
	ret = vmbc_open(&bus, ch, RING_BYTES, RING_BYTES, NULL, 0, w->vp[hvplat_cpu()].vp_index,
			&st);
	if (ret) {
		tap_not_ok("vmbus: open echo", "error %d, status %#x", ret, st);
		lines++;
		fail_rest(&lines, "echo not open (%d)", ret);
		return;
	}
	tap_ok("vmbus: echo channel relid %u opened, GPADL %#x", ch->relid, ch->gpadl);
	lines++;
	if (echo_round(ch, packets, 1, "vmbus: echo")) {
		lines++;
		fail_rest(&lines, "echo failed (%d)", -1);
		return;
	}
	lines++;
	{
		struct vmbc_echo_opts o = {.count = 100, .seed = 7};
		struct vmbc_echo_result r;

		ret = vmbc_echo_gpa_direct(&bus, ch, &o, &r);
		if (ret)
			tap_not_ok("vmbus: GPA-direct echo", "%s", r.why);
		else
			tap_ok("vmbus: %u GPA-direct packets (1..5 pages, unaligned) echoed intact",
			       r.done);
		lines++;
	}
	/* Close, re-open, UNLOAD, new INITIATE_CONTACT, open again. */
	ret = vmbc_close(&bus, ch);
	if (!ret)
		ret = vmbc_open(&bus, ch, RING_BYTES, RING_BYTES, NULL, 0, 0, &st);
	if (!ret)
		ret = echo_round(ch, 100, 2, "vmbus: after re-open") ? -1 : 0;
	else
		tap_not_ok("vmbus: close and re-open", "error %d status %#x", ret, st);
	if (ret)
		return; /* the line was printed; main.c fills the plan */
	ret = vmbc_unload(&bus);
	if (!ret)
		ret = vmbc_connect(&bus, forced);
	if (!ret)
		ret = vmbc_request_offers(&bus);
	ch = ret ? NULL : vmbc_find(&bus, vmbc_echo_class, 0);
	if (!ch || vmbc_open(&bus, ch, RING_BYTES, RING_BYTES, NULL, 0, 0, &st)) {
		tap_not_ok("vmbus: UNLOAD and INITIATE_CONTACT again", "error %d", ret);
		return;
	}
	echo_round(ch, 100, 3, "vmbus: after UNLOAD and a new INITIATE_CONTACT");
	vmbc_close(&bus, ch);
	vmbc_unload(&bus);
}

static const struct scenario vmbus_scenario = {
	.name = "vmbus",
	.count = vmbus_count,
	.run = vmbus_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(vmbus_scenario);

/*
 * vmbus-versions: every version Linux tries (5.3 .. 2.4) forced in turn within one boot:
 * INITIATE_CONTACT, offers, echo open, 100 packets, close, then UNLOAD (from 3.0 on; below
 * that the next INITIATE_CONTACT resets the bus). One line per version. Explicit only.
 */
static unsigned int vmbus_versions_count(void)
{
	return 8;
}

static void vmbus_versions_run(void)
{
	const char *why = NULL;
	struct winhv *w = tguest_hv(&why);

	if (!w || tguest_hv_synic(&why) || vmbc_init(&bus, w)) {
		for (unsigned i = 0; i < 8; i++)
			tap_not_ok("vmbus-versions", "setup failed: %s", why ? why : "vmbc_init");
		return;
	}
	for (unsigned i = 0; i < 8; i++) {
		uint32_t v = vmbc_versions[i], st = 0;
		struct vmbc_echo_opts o = {.count = 100, .max_len = 4000, .window = 4, .seed = i};
		struct vmbc_echo_result r = {.why = ""};
		struct vmbc_channel *ch = NULL;
		int ret = vmbc_connect(&bus, v);

		uint32_t got = bus.version; /* vmbc_unload clears it */

		if (!ret)
			ret = vmbc_request_offers(&bus);
		if (!ret && !(ch = vmbc_find(&bus, vmbc_echo_class, 0))) {
			tap_ok("vmbus-versions: %u.%u negotiated # SKIP no echo device", v >> 16,
			       v & 0xffff);
			continue;
		}
		if (!ret)
			ret = vmbc_open(&bus, ch, RING_BYTES, RING_BYTES, NULL, 0, 0, &st);
		if (!ret)
			ret = vmbc_echo_inband(&bus, ch, &o, &r);
		if (!ret)
			ret = vmbc_close(&bus, ch);
		if (!ret && v >= VMBC_V3_0)
			ret = vmbc_unload(&bus);
		if (ret || got != v)
			tap_not_ok("vmbus-versions", "%u.%u: error %d status %#x, got %#x %s",
				   v >> 16, v & 0xffff, ret, st, got, r.why);
		else
			tap_ok("vmbus-versions: %u.%u forced: offers, echo open, 100 packets, close%s",
			       v >> 16, v & 0xffff, v >= VMBC_V3_0 ? ", UNLOAD" : "");
	}
}

static const struct scenario vmbus_versions_scenario = {
	.name = "vmbus-versions",
	.count = vmbus_versions_count,
	.run = vmbus_versions_run,
	.explicit_only = 1,
};
SCENARIO_REGISTER(vmbus_versions_scenario);
