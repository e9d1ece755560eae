// SPDX-License-Identifier: GPL-2.0-only
/*
 * viridian run: one VM in the foreground. Arguments are checked first, the kernel is loaded
 * into fresh guest memory, then /dev/kvm is opened, the partition and devices are built and
 * the vCPUs run until the guest powers off or resets, or a signal arrives.
 */
#include "boot/acpi.h"
#include "boot/boot.h"
#include "cli/commands.h"
#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/reset.h"
#include "devices/rtc.h"
#include "devices/serial_backend.h"
#include "devices/uart.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"
#include "vid/layout.h"
#include "cli/run_hv.h"
#include "vid/partition.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

/* Without KVM to ask, --cpus is checked against this; KVM_CAP_MAX_VCPUS is checked later. */
#define RUN_MAX_CPUS_BUILTIN 1024
#define RUN_MIN_MEMORY (4ull << 20)
/* xAPIC IDs are 8 bits and 0xff is the broadcast ID; the ACPI tables hold ACPI_MAX_CPUS. */
#define RUN_MAX_CPUS_XAPIC MIN(255, ACPI_MAX_CPUS)

struct run_opts {
	const char *kernel, *initrd, *cmdline, *serial, *name;
	uint64_t memory;
	unsigned cpus;
	bool no_reboot, hugepages;
};

struct run_vm {
	struct guest_mem mem;
	struct boot_result boot;
	struct vid_partition part;
	struct uart uart;
	struct rtc rtc;
	struct i8042 kbd;
	struct reset_cf9 cf9;
	struct acpi_pm pm;
	struct run_hv hv;
	bool mem_ok, part_ok, devs_ok;
};

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: viridian run --kernel PATH [options]\n"
		"  --kernel PATH       Linux bzImage or ELF kernel with a PVH note (required)\n"
		"  --initrd PATH       initial ramdisk\n"
		"  --cmdline STRING    kernel command line\n"
		"  --memory SIZE       guest RAM, e.g. 512M or 2G (default 256M)\n"
		"  --cpus N            virtual processors (default 1)\n"
		"  --serial KIND       COM1: stdio|pty|unix:PATH|file:PATH|none (default stdio)\n"
		"  --hugepages         back guest RAM with 2 MiB pages when the host has them\n"
		"  --no-reboot         exit 0 when the guest resets instead of restarting it\n"
		"  --log-level LEVEL   error|warn|info|debug|trace (default info)\n"
		"  --name NAME         VM name shown in log lines (default vm)\n"
		"exit codes: docs/exit-codes.md\n");
}

static int __attribute__((format(printf, 2, 3))) run_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("viridian run: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static uint64_t run_host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);

	return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
}

static int run_check_file(const char *what, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s '%s': %s", what, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s '%s' is not a regular file", what, path);
	if (access(path, R_OK) < 0)
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s '%s': %s", what, path, strerror(errno));
	return 0;
}

static int run_parse(int argc, char **argv, struct run_opts *o)
{
	enum {
		O_KERNEL = 256,
		O_INITRD,
		O_CMDLINE,
		O_MEMORY,
		O_CPUS,
		O_SERIAL,
		O_NO_REBOOT,
		O_LOG_LEVEL,
		O_NAME,
		O_HUGEPAGES,
		O_HELP
	};
	static const struct option opts[] = {
		{"kernel", required_argument, NULL, O_KERNEL},
		{"initrd", required_argument, NULL, O_INITRD},
		{"cmdline", required_argument, NULL, O_CMDLINE},
		{"memory", required_argument, NULL, O_MEMORY},
		{"cpus", required_argument, NULL, O_CPUS},
		{"serial", required_argument, NULL, O_SERIAL},
		{"no-reboot", no_argument, NULL, O_NO_REBOOT},
		{"log-level", required_argument, NULL, O_LOG_LEVEL},
		{"name", required_argument, NULL, O_NAME},
		{"hugepages", no_argument, NULL, O_HUGEPAGES},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *memory = "256M", *cpus = "1";
	enum log_level level;
	enum serial_kind kind;
	const char *spath;
	uint64_t host, n;
	int c;

	*o = (struct run_opts){.serial = "stdio", .name = "vm"};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case O_KERNEL:
			o->kernel = optarg;
			break;
		case O_INITRD:
			o->initrd = optarg;
			break;
		case O_CMDLINE:
			o->cmdline = optarg;
			break;
		case O_MEMORY:
			memory = optarg;
			break;
		case O_CPUS:
			cpus = optarg;
			break;
		case O_SERIAL:
			o->serial = optarg;
			break;
		case O_NO_REBOOT:
			o->no_reboot = true;
			break;
		case O_HUGEPAGES:
			o->hugepages = true;
			break;
		case O_LOG_LEVEL:
			if (log_level_parse(optarg, &level) < 0)
				return run_fail(
					VIRIDIAN_EXIT_USAGE,
					"--log-level '%s': expected error, warn, info, debug "
					"or trace",
					optarg);
			log_set_level(level);
			break;
		case O_NAME:
			o->name = optarg;
			break;
		case 'h':
		case O_HELP:
			run_usage(stdout);
			return -1;
		default:
			if (optopt)
				return run_fail(
					VIRIDIAN_EXIT_USAGE,
					"option '%s' needs a value; see viridian run --help",
					argv[optind - 1]);
			return run_fail(VIRIDIAN_EXIT_USAGE,
					"unknown option '%s'; see viridian run --help",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"unexpected argument '%s'; see viridian run --help", argv[optind]);
	if (!o->kernel)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--kernel PATH is required");
	if (util_parse_size(memory, &o->memory) < 0)
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"--memory '%s': expected a size such as 512M or 2G", memory);
	if (o->memory < RUN_MIN_MEMORY)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--memory %s: at least 4M is needed", memory);
	if (!IS_ALIGNED(o->memory, 4096ull))
		return run_fail(VIRIDIAN_EXIT_USAGE, "--memory %s: must be a multiple of 4K",
				memory);
	host = run_host_memory();
	if (host && o->memory > host)
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"--memory %s is more than this host's %llu MiB of RAM", memory,
				(unsigned long long)(host >> 20));
	if (util_parse_u64(cpus, &n) < 0)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--cpus '%s': expected a number", cpus);
	if (n == 0)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--cpus 0: a VM needs at least one vCPU");
	if (n > RUN_MAX_CPUS_BUILTIN)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--cpus %s: at most %d vCPUs are supported",
				cpus, RUN_MAX_CPUS_BUILTIN);
	if (n > RUN_MAX_CPUS_XAPIC)
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"--cpus %s: at most %d vCPUs while the MADT uses 8-bit APIC IDs",
				cpus, RUN_MAX_CPUS_XAPIC);
	o->cpus = (unsigned)n;
	if (serial_backend_parse(o->serial, &kind, &spath) < 0)
		return run_fail(VIRIDIAN_EXIT_USAGE, "%s", err_msg());
	if (!*o->name)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--name must not be empty");
	c = run_check_file("kernel", o->kernel);
	if (c)
		return c;
	if (o->initrd) {
		c = run_check_file("initrd", o->initrd);
		if (c)
			return c;
	}
	return 0;
}

/* Fresh guest memory with ACPI tables and the kernel: at start and on every reboot. */
static int run_load(struct run_vm *vm, const struct run_opts *o)
{
	static struct acpi_config acfg; /* large (256 APIC IDs): not on the stack */
	struct boot_config bcfg = {
		.kernel_path = o->kernel, .initrd_path = o->initrd, .cmdline = o->cmdline};
	int r;

	r = guest_mem_init(&vm->mem, o->memory, o->hugepages ? GUEST_MEM_HUGEPAGES : 0);
	if (r < 0)
		return r;
	vm->mem_ok = true;
	memset(&acfg, 0, sizeof(acfg));
	acfg.ncpus = o->cpus;
	for (unsigned i = 0; i < o->cpus; i++)
		acfg.apic_ids[i] = i; /* KVM's in-kernel LAPIC of vCPU i has APIC ID i */
	r = acpi_tables_build(&vm->mem, &acfg, &bcfg.rsdp_gpa);
	if (r < 0)
		return r;
	return boot_load(&vm->mem, &bcfg, &vm->boot);
}

/* Port 0x80 (POST codes): Linux writes it as an I/O delay; swallow it without log noise. */
static void run_post_port(void *opaque, uint64_t offset, uint8_t *data, unsigned size,
			  bool is_write)
{
	if (!is_write)
		memset(data, 0xff, size);
}

static int run_build(struct run_vm *vm, struct vid_kvm *kvm, const struct run_opts *o,
		     struct serial_backend *sb)
{
	struct vid_partition *p = &vm->part;
	struct dev_irq com1 = {vid_partition_irq_set, p, LAYOUT_COM1_IRQ};
	struct dev_irq kbd = {vid_partition_irq_set, p, LAYOUT_I8042_KBD_IRQ};
	struct dev_irq sci = {vid_partition_irq_set, p, LAYOUT_ACPI_SCI_IRQ};
	struct dev_event reset = {vid_partition_reset_event, p};
	struct dev_event poweroff = {vid_partition_poweroff_event, p};
	struct uart_backend ub = {serial_backend_tx, sb};
	int r;

	/* The child partition sees Hyper-V: CPUID leaves, synthetic MSRs, hypercalls. */
	r = run_hv_create(&vm->hv, &vm->mem, o->cpus);
	if (r < 0)
		return r;
	r = vid_partition_create(p, kvm, &vm->mem, o->cpus, run_hv_cpuid_hook, &vm->hv);
	vm->part_ok = true;
	if (r < 0)
		return r;
	r = run_hv_attach(&vm->hv, p);
	if (r < 0)
		return r;
	uart_init(&vm->uart, &com1, &ub);
	rtc_init(&vm->rtc, NULL, NULL);
	i8042_init(&vm->kbd, &kbd, &reset);
	reset_cf9_init(&vm->cf9, &reset);
	acpi_pm_init(&vm->pm, &sci, &poweroff, NULL, NULL);
	vm->pm.timer_32bit = LAYOUT_ACPI_PM_TMR_32BIT;
	vm->devs_ok = true;
	r = uart_register(&vm->uart, &p->pio, LAYOUT_COM1_PORT);
	if (r == 0)
		r = rtc_register(&vm->rtc, &p->pio);
	if (r == 0)
		r = i8042_register(&vm->kbd, &p->pio);
	if (r == 0)
		r = reset_cf9_register(&vm->cf9, &p->pio);
	if (r == 0)
		r = acpi_pm_register(&vm->pm, &p->pio);
	if (r == 0)
		r = iobus_register(&p->pio, 0x80, 1, run_post_port, NULL, "post");
	if (r == 0)
		r = serial_backend_attach(sb, &vm->uart);
	if (r == 0)
		r = vid_partition_set_boot_cpu(p, &vm->boot.cpu);
	return r;
}

static void run_teardown(struct run_vm *vm, struct serial_backend *sb)
{
	serial_backend_attach(sb, NULL);
	if (vm->part_ok)
		vid_partition_destroy(&vm->part);
	run_hv_destroy(&vm->hv);
	if (vm->devs_ok) {
		uart_destroy(&vm->uart);
		rtc_destroy(&vm->rtc);
		i8042_destroy(&vm->kbd);
		reset_cf9_destroy(&vm->cf9);
		acpi_pm_destroy(&vm->pm);
	}
	if (vm->mem_ok)
		guest_mem_destroy(&vm->mem);
	memset(vm, 0, sizeof(*vm));
}

/* Waits for the partition to stop on its own or for SIGINT/SIGTERM. */
static void run_wait(struct run_vm *vm, int sigfd)
{
	struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN},
				{.fd = vm->part.stop_efd, .events = POLLIN}};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vid_partition_request_stop(&vm->part, VID_STOP_ERROR, "poll: %s",
						   strerror(errno));
			return;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				vid_partition_request_stop(&vm->part, VID_STOP_SIGNAL, "%s",
							   strsignal((int)si.ssi_signo));
			return;
		}
		if (pfd[1].revents)
			return;
	}
}

static int run_vm_loop(const struct run_opts *o, struct run_vm *vm, struct vid_kvm *kvm,
		       struct serial_backend *sb, int sigfd)
{
	unsigned boots = 0;

	for (;;) {
		enum vid_stop_reason why;
		char detail[sizeof(vm->part.stop_detail)];
		int r;

		if (boots > 0) {
			r = run_load(vm, o);
			if (r < 0) {
				run_teardown(vm, sb);
				return run_fail(VIRIDIAN_EXIT_ERROR, "reboot: %s", err_msg());
			}
		}
		r = run_build(vm, kvm, o, sb);
		if (r == 0)
			r = vid_partition_start(&vm->part);
		if (r < 0) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", err_msg());
			run_teardown(vm, sb);
			return run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
		}
		log_info("run", "%s: %u vCPU(s), %llu MiB, kernel %s",
			 boots ? "rebooted" : "started", o->cpus,
			 (unsigned long long)(o->memory >> 20), o->kernel);
		boots++;
		run_wait(vm, sigfd);
		why = vid_partition_wait(&vm->part);
		snprintf(detail, sizeof(detail), "%s", vm->part.stop_detail);
		run_teardown(vm, sb);
		switch (why) {
		case VID_STOP_POWEROFF:
			log_info("run", "guest powered off (%s)", detail);
			return VIRIDIAN_EXIT_OK;
		case VID_STOP_RESET:
			if (o->no_reboot) {
				fprintf(stderr,
					"viridian run: guest reset (%s); exiting because of "
					"--no-reboot\n",
					detail);
				return VIRIDIAN_EXIT_OK;
			}
			log_info("run", "guest reset (%s): rebooting", detail);
			continue;
		case VID_STOP_SIGNAL:
			log_info("run", "stopped by %s", detail);
			return VIRIDIAN_EXIT_INTERRUPTED;
		case VID_STOP_EMULATION:
			return run_fail(VIRIDIAN_EXIT_EMULATION, "guest stopped: %s", detail);
		case VID_STOP_GUEST_CRASH:
			return run_fail(VIRIDIAN_EXIT_GUEST_CRASH, "guest crashed: %s", detail);
		case VID_STOP_ERROR:
		case VID_RUNNING:
		default:
			return run_fail(VIRIDIAN_EXIT_ERROR, "%s", detail);
		}
	}
}

int cmd_run(int argc, char **argv)
{
	struct rlimit no_core = {0, 0};
	static struct run_vm vm;
	struct serial_backend sb;
	struct run_opts o;
	struct vid_kvm kvm;
	sigset_t sigs;
	int r, sigfd;

	/* A failure is a line on stderr, never a core file. */
	setrlimit(RLIMIT_CORE, &no_core);
	r = run_parse(argc, argv, &o);
	if (r)
		return r < 0 ? VIRIDIAN_EXIT_OK : r;
	log_set_vm_name(o.name);
	memset(&vm, 0, sizeof(vm));
	/* Load before opening KVM so a bad kernel is reported as such on any host. */
	if (run_load(&vm, &o) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err_msg());
		if (vm.mem_ok)
			guest_mem_destroy(&vm.mem);
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
	}
	if (vid_kvm_open(&kvm) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err_msg());
		guest_mem_destroy(&vm.mem);
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
	}
	if (o.cpus > kvm.max_vcpus) {
		guest_mem_destroy(&vm.mem);
		vid_kvm_close(&kvm);
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"--cpus %u: this host's KVM supports at most %u", o.cpus,
				kvm.max_vcpus);
	}
	/* Signals go to a signalfd; every thread created from here on inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sigfd < 0 || serial_backend_open(&sb, o.serial) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", sigfd < 0 ? strerror(errno) : err_msg());
		guest_mem_destroy(&vm.mem);
		vid_kvm_close(&kvm);
		return run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
	}
	r = run_vm_loop(&o, &vm, &kvm, &sb, sigfd);
	serial_backend_close(&sb);
	close(sigfd);
	vid_kvm_close(&kvm);
	return r;
}
