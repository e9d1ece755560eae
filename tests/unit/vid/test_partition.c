// SPDX-License-Identifier: GPL-2.0-only
/*
 * The partition's stop machinery and exit dispatcher, driven without KVM: fake run areas
 * filled the way KVM fills them, and threads standing in for vCPUs blocked in a syscall.
 */
#include "vid/partition.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUN_SIZE 4096

static struct vid_kvm fake_kvm = {.fd = -1, .run_mmap_size = RUN_SIZE, .max_vcpus = 8};

static void fake_setup(struct vid_partition *p, unsigned n)
{
	assert_int_equal(vid_partition_init(p, &fake_kvm, NULL), 0);
	p->vcpus = calloc(n, sizeof(*p->vcpus));
	p->ncpus = n;
	for (unsigned i = 0; i < n; i++) {
		p->vcpus[i].p = p;
		p->vcpus[i].index = i;
		p->vcpus[i].fd = -1;
		p->vcpus[i].run = calloc(1, RUN_SIZE);
	}
}

static void fake_teardown(struct vid_partition *p)
{
	vid_partition_wait(p);
	for (unsigned i = 0; i < p->ncpus; i++)
		free(p->vcpus[i].run);
	free(p->vcpus);
	p->vcpus = NULL;
	p->ncpus = 0;
	vid_partition_destroy(p);
}

static int pipe_fds[2];
static _Atomic int ready, interrupted;

/* Stands in for a vCPU inside KVM_RUN: blocked in a read nobody will satisfy. */
static void *fake_vcpu(void *arg)
{
	struct vid_vcpu *v = arg;
	sigset_t set;
	char c;

	sigemptyset(&set);
	sigaddset(&set, VID_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	atomic_fetch_add(&ready, 1);
	while (atomic_load(&v->p->stop_reason) == VID_RUNNING) {
		if (read(pipe_fds[0], &c, 1) < 0 && errno == EINTR)
			atomic_fetch_add(&interrupted, 1);
	}
	return NULL;
}

static void test_stop_kicks_every_vcpu(void **state)
{
	struct vid_partition p;
	struct timespec ts = {0, 50000000};
	uint64_t cnt = 0;

	assert_int_equal(pipe(pipe_fds), 0);
	fake_setup(&p, 4);
	ready = interrupted = 0;
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(pthread_create(&p.vcpus[i].thread, NULL, fake_vcpu, &p.vcpus[i]),
				 0);
		p.vcpus[i].thread_started = true;
	}
	while (atomic_load(&ready) < 4)
		nanosleep(&ts, NULL);
	nanosleep(&ts, NULL); /* let them block in read() */
	assert_int_equal(read(p.stop_efd, &cnt, sizeof(cnt)), -1); /* nothing yet */
	vid_partition_poweroff_event(&p, "ACPI S5 power-off");
	vid_partition_reset_event(&p, "too late");
	assert_int_equal(vid_partition_wait(&p), VID_STOP_POWEROFF);
	assert_int_equal(atomic_load(&interrupted), 4); /* each one left its syscall via the kick */
	assert_string_equal(p.stop_detail, "ACPI S5 power-off");
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(p.vcpus[i].run->immediate_exit, 1);
	assert_int_equal(read(p.stop_efd, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	fake_teardown(&p);
	close(pipe_fds[0]);
	close(pipe_fds[1]);
}

struct probe {
	unsigned writes, reads;
	uint8_t last[8];
	uint64_t offset;
};

static void probe_fn(void *opaque, uint64_t offset, uint8_t *data, unsigned size, bool is_write)
{
	struct probe *pr = opaque;

	pr->offset = offset;
	if (is_write) {
		pr->last[pr->writes % 8] = data[0];
		pr->writes++;
	} else {
		memset(data, 0x42, size);
		pr->reads++;
	}
}

static void test_io_and_mmio_exits(void **state)
{
	struct vid_partition p;
	struct probe pio = {0}, mmio = {0};
	struct kvm_run *run;

	fake_setup(&p, 1);
	run = p.vcpus[0].run;
	assert_int_equal(iobus_register(&p.pio, 0x3f8, 8, probe_fn, &pio, "uart"), 0);
	assert_int_equal(iobus_register(&p.mmio, 0xd0000000, 0x1000, probe_fn, &mmio, "dev"), 0);
	/* rep outsb of three bytes. */
	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = KVM_EXIT_IO_OUT;
	run->io.size = 1;
	run->io.port = 0x3f8;
	run->io.count = 3;
	run->io.data_offset = 1024;
	memcpy((uint8_t *)run + 1024, "abc", 3);
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(pio.writes, 3);
	assert_memory_equal(pio.last, "abc", 3);
	/* in from port 0x3fd: the device fills the run area. */
	run->io.direction = KVM_EXIT_IO_IN;
	run->io.port = 0x3fd;
	run->io.count = 1;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(pio.reads, 1);
	assert_int_equal(pio.offset, 5);
	assert_int_equal(((uint8_t *)run)[1024], 0x42);
	/* MMIO write of 4 bytes. */
	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = 0xd0000010;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	run->mmio.data[0] = 0x99;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(mmio.writes, 1);
	assert_int_equal(mmio.offset, 0x10);
	assert_int_equal(atomic_load(&p.stop_reason), VID_RUNNING);
	/* A count that would run past the run area stops the partition instead. */
	run->exit_reason = KVM_EXIT_IO;
	run->io.size = 4;
	run->io.count = 100;
	run->io.data_offset = RUN_SIZE - 16;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_ERROR);
	assert_non_null(strstr(p.stop_detail, "malformed port I/O"));
	fake_teardown(&p);
}

static void test_triple_fault_is_reset(void **state)
{
	struct vid_partition p;

	fake_setup(&p, 2);
	p.vcpus[1].run->exit_reason = KVM_EXIT_SHUTDOWN;
	vid_vcpu_handle_exit(&p.vcpus[1]);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_RESET);
	assert_non_null(strstr(p.stop_detail, "triple fault on vCPU 1"));
	fake_teardown(&p);
}

static void test_emulation_failure_report(void **state)
{
	struct vid_partition p;
	struct kvm_run *run;
	char tmpl[] = "/tmp/test_partition_XXXXXX", logbuf[4096];
	int fd = mkstemp(tmpl), saved = dup(2);
	ssize_t n;

	fake_setup(&p, 1);
	run = p.vcpus[0].run;
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.ndata = 4;
	run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
	run->emulation_failure.insn_size = 3;
	memcpy(run->emulation_failure.insn_bytes, "\x0f\xc7\x0e", 3); /* cmpxchg16b */
	unlink(tmpl);
	dup2(fd, 2);
	vid_vcpu_handle_exit(&p.vcpus[0]);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_EMULATION);
	assert_non_null(strstr(p.stop_detail, "suberror 1 (emulation failure)"));
	assert_non_null(strstr(p.stop_detail, "RIP 0x"));
	assert_non_null(strstr(p.stop_detail, "instruction bytes: 0f c7 0e"));
	n = pread(fd, logbuf, sizeof(logbuf) - 1, 0);
	close(fd);
	assert_true(n > 0);
	logbuf[n] = 0;
	assert_non_null(strstr(logbuf, "KVM_EXIT_INTERNAL_ERROR"));
	fake_teardown(&p);
}

static void test_system_events(void **state)
{
	struct vid_partition p;

	fake_setup(&p, 1);
	p.vcpus[0].run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	p.vcpus[0].run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_POWEROFF);
	fake_teardown(&p);
	fake_setup(&p, 1);
	p.vcpus[0].run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	p.vcpus[0].run->fail_entry.hardware_entry_failure_reason = 0x21;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_EMULATION);
	assert_non_null(strstr(p.stop_detail, "VM entry failed, hardware reason 0x21"));
	fake_teardown(&p);
}

static unsigned hook_calls;

static bool hypercall_hook(void *opaque, struct vid_vcpu *v)
{
	hook_calls++;
	return v->run->exit_reason == KVM_EXIT_HYPERCALL;
}

static void test_exit_hook(void **state)
{
	struct vid_partition p;

	fake_setup(&p, 1);
	hook_calls = 0;
	p.exit_hook = hypercall_hook;
	p.vcpus[0].run->exit_reason = KVM_EXIT_HYPERCALL;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(atomic_load(&p.stop_reason), VID_RUNNING);
	/* Declined by the hook: an unexpected exit stops the partition. */
	p.vcpus[0].run->exit_reason = KVM_EXIT_DEBUG;
	vid_vcpu_handle_exit(&p.vcpus[0]);
	assert_int_equal(hook_calls, 2);
	assert_int_equal(atomic_load(&p.stop_reason), VID_STOP_EMULATION);
	assert_non_null(strstr(p.stop_detail, "unexpected KVM exit reason"));
	fake_teardown(&p);
}

static int msr_fn(void *opaque, unsigned vp, bool is_write, uint32_t index, uint64_t *data)
{
	uint64_t *store = opaque;

	if (index != 0x40000000)
		return -1;
	if (is_write)
		*store = *data;
	else
		*data = *store + vp;
	return 0;
}

static void test_msr_exits(void **state)
{
	struct vid_partition p;
	struct kvm_run *run;
	uint64_t store = 0;

	fake_setup(&p, 2);
	run = p.vcpus[1].run;
	/* No handler: #GP to the guest, partition keeps running. */
	run->exit_reason = KVM_EXIT_X86_RDMSR;
	run->msr.index = 0x40000000;
	vid_vcpu_handle_exit(&p.vcpus[1]);
	assert_int_equal(run->msr.error, 1);
	p.msr_fn = msr_fn;
	p.msr_opaque = &store;
	run->exit_reason = KVM_EXIT_X86_WRMSR;
	run->msr.data = 0x1234;
	vid_vcpu_handle_exit(&p.vcpus[1]);
	assert_int_equal(run->msr.error, 0);
	assert_int_equal(store, 0x1234);
	run->exit_reason = KVM_EXIT_X86_RDMSR;
	run->msr.data = 0;
	vid_vcpu_handle_exit(&p.vcpus[1]);
	assert_int_equal(run->msr.error, 0);
	assert_int_equal(run->msr.data, 0x1235); /* vCPU index passed through */
	run->msr.index = 0x40000001;
	vid_vcpu_handle_exit(&p.vcpus[1]);
	assert_int_equal(run->msr.error, 1);
	assert_int_equal(atomic_load(&p.stop_reason), VID_RUNNING);
	/* Outside a vCPU thread there is no current vCPU. */
	assert_null(vid_vcpu_current());
	fake_teardown(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stop_kicks_every_vcpu),
		cmocka_unit_test(test_io_and_mmio_exits),
		cmocka_unit_test(test_triple_fault_is_reset),
		cmocka_unit_test(test_emulation_failure_report),
		cmocka_unit_test(test_system_events),
		cmocka_unit_test(test_exit_hook),
		cmocka_unit_test(test_msr_exits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
