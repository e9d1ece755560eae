// SPDX-License-Identifier: GPL-2.0-only
/*
 * End-to-end partition tests on real KVM: a few hand-assembled 32-bit instructions write to
 * COM1 and to PM1a_CNT (S5) through the buses, with one vCPU and with an AP brought up by
 * INIT-SIPI through the in-kernel LAPIC. Skipped (TAP SKIP) where /dev/kvm cannot be opened.
 */
#include "lib/err.h"
#include "vid/layout.h"
#include "vid/partition.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CODE_GPA 0x1000
#define AP_CODE_GPA 0x2000
#define FLAG_GPA 0x3000

/* BSP, 32-bit flat: INIT + SIPI (vector 2) to APIC ID 1, wait for the AP's flag, then UP code. */
static const uint8_t bsp_smp[] = {
	0xc7, 0x05, 0x10, 0x03, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x01, /* ICR high = dest 1 */
	0xc7, 0x05, 0x00, 0x03, 0xe0, 0xfe, 0x00, 0x45, 0x00, 0x00, /* ICR low = INIT */
	0xc7, 0x05, 0x00, 0x03, 0xe0, 0xfe, 0x02, 0x46, 0x00, 0x00, /* ICR low = SIPI 0x2000 */
	0x80, 0x3d, 0x00, 0x30, 0x00, 0x00, 0x01, /* cmp byte [0x3000], 1 */
	0x75, 0xf7, /* jne back to cmp */
};
/* out 'V' to COM1, out S5|SLP_EN to PM1a_CNT, hlt forever. */
static const uint8_t bsp_up[] = {
	0x66, 0xba, 0xf8, 0x03, /* mov dx, 0x3f8 */
	0xb0, 0x56, /* mov al, 'V' */
	0xee, /* out dx, al */
	0x66, 0xba, 0x04, 0x06, /* mov dx, 0x604 */
	0x66, 0xb8, 0x00, 0x34, /* mov ax, (5 << 10) | SLP_EN */
	0x66, 0xef, /* out dx, ax */
	0xf4, /* hlt */
	0xeb, 0xfd, /* jmp hlt */
};
/* AP, real mode at 0x200:0: mov byte [0x3000], 1; hlt; jmp hlt. */
static const uint8_t ap_code[] = {0xc6, 0x06, 0x00, 0x30, 0x01, 0xf4, 0xeb, 0xfd};

static const uint64_t gdt[3] = {0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull};

struct sink {
	char out[16];
	unsigned n;
	struct vid_partition *p;
};

static void com1(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sink *s = opaque;

	if (is_write && off == 0 && s->n < sizeof(s->out) - 1)
		s->out[s->n++] = (char)data[0];
	else if (!is_write)
		memset(data, off == 5 ? 0x60 : 0, size);
}

static void pm1a_cnt(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct sink *s = opaque;

	if (is_write && size == 2 && off == 0 && (data[1] & 0x20) && ((data[1] >> 2) & 7) == 5)
		vid_partition_poweroff_event(s->p, "S5");
	else if (!is_write)
		memset(data, 0, size);
}

static void *watchdog(void *arg)
{
	struct vid_partition *p = arg;

	for (int i = 0; i < 200 && atomic_load(&p->stop_reason) == VID_RUNNING; i++)
		usleep(100000);
	vid_partition_request_stop(p, VID_STOP_ERROR, "test watchdog: guest did not power off");
	return NULL;
}

/*
 * Plain TAP rather than cmocka: cmocka reports a skip as "not ok # SKIP", which TAP consumers
 * such as Meson count as a failure.
 */
#define CHECK(cond)                                                                           \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			printf("# %s:%d: check failed: %s (%s)\n", __FILE__, __LINE__, #cond, \
			       err_msg());                                                    \
			return -1;                                                            \
		}                                                                             \
	} while (0)

/* 0 pass, -1 fail, 1 skipped (no KVM). */
static int boot_and_check(unsigned ncpus)
{
	struct vid_kvm kvm;
	struct guest_mem gm;
	struct vid_partition p;
	struct sink s = {.p = &p};
	struct boot_cpu_state cpu = {
		.long_mode = false,
		.rip = CODE_GPA,
		.rsp = 0x8000,
		.rflags = 2,
		.cr0 = 0x11,
		.gdt_base = LAYOUT_GDT_GPA,
		.gdt_limit = sizeof(gdt) - 1,
		.code_selector = 0x08,
		.data_selector = 0x10,
	};
	pthread_t wd;
	sigset_t sigs;

	if (vid_kvm_open(&kvm) < 0) {
		printf("# %s\n", err_msg());
		return 1;
	}
	CHECK((guest_mem_init(&gm, 2 << 20, 0)) == (0));
	CHECK((guest_mem_write(&gm, LAYOUT_GDT_GPA, gdt, sizeof(gdt))) == (0));
	if (ncpus > 1) {
		CHECK((guest_mem_write(&gm, CODE_GPA, bsp_smp, sizeof(bsp_smp))) == (0));
		CHECK((guest_mem_write(&gm, CODE_GPA + sizeof(bsp_smp), bsp_up, sizeof(bsp_up))) ==
		      (0));
		CHECK((guest_mem_write(&gm, AP_CODE_GPA, ap_code, sizeof(ap_code))) == (0));
	} else {
		CHECK((guest_mem_write(&gm, CODE_GPA, bsp_up, sizeof(bsp_up))) == (0));
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	CHECK(vid_partition_create(&p, &kvm, &gm, ncpus, NULL, NULL) == 0);
	CHECK((iobus_register(&p.pio, LAYOUT_COM1_PORT, 8, com1, &s, "com1")) == (0));
	CHECK((iobus_register(&p.pio, LAYOUT_ACPI_PM1A_CNT, 2, pm1a_cnt, &s, "pm")) == (0));
	CHECK((vid_partition_set_boot_cpu(&p, &cpu)) == (0));
	CHECK((vid_partition_start(&p)) == (0));
	pthread_create(&wd, NULL, watchdog, &p);
	CHECK((vid_partition_wait(&p)) == (VID_STOP_POWEROFF));
	pthread_join(wd, NULL);
	CHECK(strcmp(s.out, "V") == 0);
	if (ncpus > 1) {
		uint8_t flag = 0;

		CHECK((guest_mem_read(&gm, FLAG_GPA, &flag, 1)) == (0));
		CHECK((flag) == (1)); /* the AP ran */
	}
	vid_partition_destroy(&p);
	guest_mem_destroy(&gm);
	vid_kvm_close(&kvm);
	return 0;
}

int main(void)
{
	static const struct {
		unsigned ncpus;
		const char *name;
	} tests[] = {
		{1, "kvm: one vCPU writes COM1 and powers off through PM1a_CNT"},
		{2, "kvm: BSP starts the AP with INIT-SIPI, AP runs, power-off stops both"},
	};
	int fail = 0;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("1..%zu\n", sizeof(tests) / sizeof(tests[0]));
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		int r = boot_and_check(tests[i].ncpus);

		if (r > 0)
			printf("ok %zu - %s # SKIP no /dev/kvm\n", i + 1, tests[i].name);
		else
			printf("%s %zu - %s\n", r ? "not ok" : "ok", i + 1, tests[i].name);
		fail |= r < 0;
	}
	return fail;
}
