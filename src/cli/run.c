// SPDX-License-Identifier: GPL-2.0-only
/*
 * viridian run: one VM in the foreground. Arguments are checked first, the kernel is loaded
 * into fresh guest memory, then /dev/kvm is opened, the partition and devices are built and
 * the vCPUs run until the guest powers off or resets, or a signal arrives.
 */
#include "boot/acpi.h"
#include "boot/boot.h"
#include "cli/commands.h"
#include "cli/run.h"
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
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* Without KVM to ask, --cpus is checked against this; KVM_CAP_MAX_VCPUS is checked later. */
#define RUN_MAX_CPUS_BUILTIN 1024
#define RUN_MIN_MEMORY (4ull << 20)
/* xAPIC IDs are 8 bits and 0xff is the broadcast ID; the ACPI tables hold ACPI_MAX_CPUS. */
#define RUN_MAX_CPUS_XAPIC MIN(255, ACPI_MAX_CPUS)

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

/* Error prefix (viridian run / viridian vmwp) and the last failure, the Off event's reason. */
static const char *run_prog = "viridian run";
static char run_reason[512];

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
		"  --disk PATH[,ro][,format=raw|vhd|vhdx]\n"
		"                      a disk on the synthetic SCSI controller (repeatable, LUN 0..63)\n"
		"  --device echo       the VMBus echo test device (and the hv echo port)\n"
		"  --hv-timers         offer Hyper-V synthetic timers (each arm is an MSR exit)\n"
		"exit codes: docs/exit-codes.md\n");
}

static int __attribute__((format(printf, 2, 3))) run_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(run_reason, sizeof(run_reason), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", run_prog, run_reason);
	/* Callers of run_config_check() (the worker) pass the line on. */
	err_set("%s", run_reason);
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

/* PATH[,ro][,format=raw|vhd|vhdx], modified in place (argv is ours). */
static int run_parse_disk(char *spec, struct run_config *o)
{
	static struct run_disk disks[RUN_MAX_DISKS];
	struct run_disk *d;
	char *opt;

	if (o->ndisks >= RUN_MAX_DISKS)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--disk: at most %d disks (LUNs) per VM",
				RUN_MAX_DISKS);
	d = &disks[o->ndisks];
	*d = (struct run_disk){.path = spec, .format = DISK_FORMAT_AUTO};
	opt = strchr(spec, ',');
	if (opt)
		*opt++ = '\0';
	while (opt) {
		char *next = strchr(opt, ',');

		if (next)
			*next++ = '\0';
		if (!strcmp(opt, "ro"))
			d->read_only = true;
		else if (!strcmp(opt, "format=raw"))
			d->format = DISK_FORMAT_RAW;
		else if (!strcmp(opt, "format=vhd"))
			d->format = DISK_FORMAT_VHD;
		else if (!strcmp(opt, "format=vhdx"))
			d->format = DISK_FORMAT_VHDX;
		else
			return run_fail(VIRIDIAN_EXIT_USAGE,
					"--disk %s: unknown option '%s' (ro, format=raw|vhd|vhdx)",
					spec, opt);
		opt = next;
	}
	if (!*d->path)
		return run_fail(VIRIDIAN_EXIT_USAGE, "--disk: empty path");
	o->disks = disks;
	o->ndisks++;
	return 0;
}

/* Every disk exists and can be opened as asked (the images are opened for real per boot). */
static int run_check_disks(const struct run_config *o)
{
	for (unsigned i = 0; i < o->ndisks; i++) {
		const struct run_disk *d = &o->disks[i];
		int r = run_check_file("disk", d->path);

		if (r)
			return r;
		if (!d->read_only && access(d->path, W_OK) < 0)
			return run_fail(VIRIDIAN_EXIT_ERROR,
					"disk '%s': %s (attach it with ,ro to use it read-only)",
					d->path, strerror(errno));
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(o->disks[j].path, d->path))
				return run_fail(VIRIDIAN_EXIT_USAGE, "disk '%s' is given twice",
						d->path);
	}
	return 0;
}

static int run_parse(int argc, char **argv, struct run_config *o)
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
		O_DISK,
		O_DEVICE,
		O_HV_TIMERS,
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
		{"disk", required_argument, NULL, O_DISK},
		{"device", required_argument, NULL, O_DEVICE},
		{"hv-timers", no_argument, NULL, O_HV_TIMERS},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *memory = "256M", *cpus = "1";
	enum log_level level;
	enum serial_kind kind;
	const char *spath;
	uint64_t host, n;
	int c;

	*o = (struct run_config){.serial = "stdio", .name = "vm"};
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
		case O_DISK:
			c = run_parse_disk(optarg, o);
			if (c)
				return c;
			break;
		case O_DEVICE:
			if (strcmp(optarg, "echo"))
				return run_fail(VIRIDIAN_EXIT_USAGE,
						"--device '%s': the only device is 'echo'", optarg);
			o->echo_device = true;
			break;
		case O_HV_TIMERS:
			o->hv_timers = true;
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
	return run_check_disks(o);
}

/* Fresh guest memory with ACPI tables and the kernel: at start and on every reboot. */
static int run_load(struct run_vm *vm, const struct run_config *o)
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

static int run_sb_attach(void *opaque, struct uart *u)
{
	return serial_backend_attach(opaque, u);
}

/* VMBus and its devices: the SCSI controller with every --disk as a LUN, the echo device. */
static int run_build_vmbus(struct run_vm *vm, const struct run_config *o)
{
	static struct storvsp_lun_config luns[RUN_MAX_DISKS];
	struct run_hv_devices devs = {.luns = luns, .nluns = o->ndisks, .echo = o->echo_device};

	for (unsigned i = 0; i < o->ndisks; i++)
		luns[i] = (struct storvsp_lun_config){.path = o->disks[i].path,
						      .format = o->disks[i].format,
						      .read_only = o->disks[i].read_only};
	return run_hv_add_vmbus(&vm->hv, &vm->mem, o->cpus, &devs);
}

static int run_build(struct run_vm *vm, struct vid_kvm *kvm, const struct run_config *o,
		     const struct run_serial *ser)
{
	struct vid_partition *p = &vm->part;
	struct dev_irq com1 = {vid_partition_irq_set, p, LAYOUT_COM1_IRQ};
	struct dev_irq kbd = {vid_partition_irq_set, p, LAYOUT_I8042_KBD_IRQ};
	struct dev_irq sci = {vid_partition_irq_set, p, LAYOUT_ACPI_SCI_IRQ};
	struct dev_event reset = {vid_partition_reset_event, p};
	struct dev_event poweroff = {vid_partition_poweroff_event, p};
	struct uart_backend ub = {ser->tx, ser->opaque};
	int r;

	/* The child partition sees Hyper-V: CPUID leaves, synthetic MSRs, hypercalls. */
	r = run_hv_create(&vm->hv, &vm->mem, o->cpus);
	if (r < 0)
		return r;
	vm->hv.stimers = o->hv_timers;
	r = run_build_vmbus(vm, o);
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
		r = ser->attach(ser->opaque, &vm->uart);
	if (r == 0)
		r = vid_partition_set_boot_cpu(p, &vm->boot.cpu);
	return r;
}

static void run_teardown(struct run_vm *vm, const struct run_serial *ser)
{
	ser->attach(ser->opaque, NULL);
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

/*
 * Pause. vid has no pause of its own, so a real-time signal sent to each vCPU thread parks it
 * in the handler. Parking is only safe where the thread holds no lock, which is exactly when
 * the signal ended its KVM_RUN with EINTR (the interrupted registers still hold the ioctl's
 * fd and request); anywhere else the handler returns and the pauser signals again a moment
 * later. x86-64 only, like the rest of the VMM.
 */
static struct run_ctl *run_pause_ctl;

static int run_pause_signal(void)
{
	return SIGRTMIN + 2;
}

static void run_futex_wake(_Atomic int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void run_pause_handler(int sig, siginfo_t *si, void *uctx)
{
	const ucontext_t *uc = uctx;
	struct run_ctl *c = run_pause_ctl;
	struct vid_vcpu *v = vid_vcpu_current();
	int saved = errno;

	if (!c || !v || uc->uc_mcontext.gregs[REG_RAX] != -EINTR ||
	    (unsigned long)uc->uc_mcontext.gregs[REG_RSI] != KVM_RUN ||
	    uc->uc_mcontext.gregs[REG_RDI] != v->fd) {
		errno = saved;
		return;
	}
	atomic_fetch_add(&c->parked, 1);
	run_futex_wake(&c->parked);
	while (atomic_load(&c->paused))
		syscall(SYS_futex, &c->paused, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
	atomic_fetch_sub(&c->parked, 1);
	errno = saved;
}

/* Called with ctl->lock held and ctl->vm set. */
static int run_pause_vcpus(struct run_ctl *c)
{
	struct vid_partition *p = &c->vm->part;
	uint64_t deadline = util_now_ns() + 2000000000ull;

	atomic_store(&c->paused, 1);
	while (atomic_load(&c->parked) < (int)p->ncpus) {
		if (util_now_ns() > deadline || atomic_load(&p->stop_reason) != VID_RUNNING) {
			atomic_store(&c->paused, 0);
			run_futex_wake(&c->paused);
			err_set("the virtual processors did not pause within 2 s");
			return -ETIMEDOUT;
		}
		for (unsigned i = 0; i < p->ncpus; i++)
			if (p->vcpus[i].thread_started)
				pthread_kill(p->vcpus[i].thread, run_pause_signal());
		usleep(500);
	}
	return 0;
}

static void run_resume_vcpus(struct run_ctl *c)
{
	atomic_store(&c->paused, 0);
	run_futex_wake(&c->paused);
}

void run_ctl_init(struct run_ctl *ctl)
{
	memset(ctl, 0, sizeof(*ctl));
	pthread_mutex_init(&ctl->lock, NULL);
	ctl->state = RUN_STATE_OFF;
}

void run_ctl_destroy(struct run_ctl *ctl)
{
	pthread_mutex_destroy(&ctl->lock);
}

const char *run_state_name(enum run_state s)
{
	static const char *const names[] = {"Starting", "Running", "Paused", "Stopping", "Off"};

	return (unsigned)s < ARRAY_SIZE(names) ? names[s] : "Unknown";
}

enum run_state run_ctl_state(struct run_ctl *ctl)
{
	enum run_state s;

	pthread_mutex_lock(&ctl->lock);
	s = ctl->state;
	pthread_mutex_unlock(&ctl->lock);
	return s;
}

static void run_notify(const struct run_config *o, enum run_state s, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void run_notify(const struct run_config *o, enum run_state s, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	if (o->ctl) {
		pthread_mutex_lock(&o->ctl->lock);
		o->ctl->state = s;
		pthread_mutex_unlock(&o->ctl->lock);
	}
	if (!o->on_state)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	o->on_state(o->opaque, s, reason);
}

static const char *const run_req_names[] = {"stop", "shutdown", "pause", "resume", "reset"};

int run_ctl_request(struct run_ctl *c, enum run_request req)
{
	struct run_vm *vm;
	enum run_state s, to;
	int r = 0;

	if ((unsigned)req >= ARRAY_SIZE(run_req_names)) {
		err_set("unknown request %d", (int)req);
		return -EINVAL;
	}
	pthread_mutex_lock(&c->lock);
	vm = c->vm;
	s = c->state;
	to = s;
	/* No partition yet, or between the boots of a reset: a stop ends the VM at the next one. */
	if (!vm && req == RUN_REQ_STOP && s != RUN_STATE_OFF) {
		c->stop_requested = true;
		to = RUN_STATE_STOPPING;
		goto out;
	}
	if (!vm && (s == RUN_STATE_RUNNING || s == RUN_STATE_PAUSED)) {
		err_set("cannot %s while the VM reboots; try again", run_req_names[req]);
		r = -EAGAIN;
		goto out;
	}
	if (!vm || (s != RUN_STATE_RUNNING && s != RUN_STATE_PAUSED &&
		    !(s == RUN_STATE_STOPPING && req == RUN_REQ_STOP))) {
		err_set("cannot %s: the VM is %s", run_req_names[req], run_state_name(s));
		r = -EBUSY;
		goto out;
	}
	switch (req) {
	case RUN_REQ_STOP:
	case RUN_REQ_RESET:
		if (req == RUN_REQ_STOP)
			c->stop_requested = true;
		else
			c->reset_requested = true;
		/* Parked vCPUs must run again to see the stop and be joined. */
		run_resume_vcpus(c);
		vid_partition_request_stop(&vm->part, VID_STOP_SIGNAL, "%s requested",
					   run_req_names[req]);
		to = req == RUN_REQ_STOP ? RUN_STATE_STOPPING : RUN_STATE_RUNNING;
		break;
	case RUN_REQ_SHUTDOWN:
		if (s == RUN_STATE_PAUSED) {
			err_set("cannot shut down a paused VM: resume it first");
			r = -EBUSY;
			goto out;
		}
		acpi_pm_power_button(&vm->pm);
		to = RUN_STATE_STOPPING;
		break;
	case RUN_REQ_PAUSE:
		if (s == RUN_STATE_PAUSED)
			break;
		r = run_pause_vcpus(c);
		if (r == 0)
			to = RUN_STATE_PAUSED;
		break;
	case RUN_REQ_RESUME:
		if (s != RUN_STATE_PAUSED)
			break;
		run_resume_vcpus(c);
		to = RUN_STATE_RUNNING;
		break;
	}
out:
	c->state = to;
	pthread_mutex_unlock(&c->lock);
	if (r == 0 && to != s && c->cfg && c->cfg->on_state)
		c->cfg->on_state(c->cfg->opaque, to, run_req_names[req]);
	return r;
}

/* Waits for the partition to stop on its own or for SIGINT/SIGTERM. */
static void run_wait(struct run_vm *vm, const struct run_config *o, int sigfd)
{
	struct pollfd pfd[2] = {{.fd = sigfd, .events = POLLIN},
				{.fd = vm->part.stop_efd, .events = POLLIN}};

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			vid_partition_request_stop(&vm->part, VID_STOP_ERROR, "poll: %s",
						   strerror(errno));
			break;
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			if (read(sigfd, &si, sizeof(si)) == sizeof(si))
				vid_partition_request_stop(&vm->part, VID_STOP_SIGNAL, "%s",
							   strsignal((int)si.ssi_signo));
			break;
		}
		if (pfd[1].revents)
			break;
	}
	/* No request may reach this boot any more; parked vCPUs must run to be joined. */
	if (o->ctl) {
		pthread_mutex_lock(&o->ctl->lock);
		o->ctl->vm = NULL;
		run_resume_vcpus(o->ctl);
		pthread_mutex_unlock(&o->ctl->lock);
	}
}

static int run_vm_loop(const struct run_config *o, struct run_vm *vm, struct vid_kvm *kvm,
		       const struct run_serial *ser, int sigfd)
{
	unsigned boots = 0;

	for (;;) {
		enum vid_stop_reason why;
		char detail[sizeof(vm->part.stop_detail)];
		bool stop_req = false, reset_req = false;
		int r;

		if (boots > 0) {
			r = run_load(vm, o);
			if (r < 0) {
				run_teardown(vm, ser);
				return run_fail(VIRIDIAN_EXIT_ERROR, "reboot: %s", err_msg());
			}
		}
		r = run_build(vm, kvm, o, ser);
		/* The partition exists and no guest instruction has run: the sandbox goes on. */
		if (r == 0 && boots == 0 && o->before_guest)
			r = o->before_guest(o->opaque) ? -EPERM : 0;
		if (r == 0 && o->ctl) {
			pthread_mutex_lock(&o->ctl->lock);
			stop_req = o->ctl->stop_requested;
			if (!stop_req)
				o->ctl->vm = vm;
			o->ctl->reset_requested = false;
			pthread_mutex_unlock(&o->ctl->lock);
			/* Stopped while starting or rebooting: no guest code runs again. */
			if (stop_req) {
				run_teardown(vm, ser);
				snprintf(run_reason, sizeof(run_reason),
					 "stopped (hard stop requested)");
				log_info("run", "%s", run_reason);
				return VIRIDIAN_EXIT_OK;
			}
		}
		if (r == 0)
			r = vid_partition_start(&vm->part);
		if (r < 0) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", err_msg());
			if (o->ctl) {
				pthread_mutex_lock(&o->ctl->lock);
				o->ctl->vm = NULL;
				pthread_mutex_unlock(&o->ctl->lock);
			}
			run_teardown(vm, ser);
			return run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
		}
		log_info("run", "%s: %u vCPU(s), %llu MiB, kernel %s",
			 boots ? "rebooted" : "started", o->cpus,
			 (unsigned long long)(o->memory >> 20), o->kernel);
		if (boots == 0)
			run_notify(o, RUN_STATE_RUNNING, "started");
		boots++;
		run_wait(vm, o, sigfd);
		why = vid_partition_wait(&vm->part);
		snprintf(detail, sizeof(detail), "%s", vm->part.stop_detail);
		if (o->ctl) {
			pthread_mutex_lock(&o->ctl->lock);
			stop_req = o->ctl->stop_requested;
			reset_req = o->ctl->reset_requested;
			pthread_mutex_unlock(&o->ctl->lock);
		}
		run_teardown(vm, ser);
		if (why == VID_STOP_SIGNAL && stop_req) {
			snprintf(run_reason, sizeof(run_reason), "stopped (hard stop requested)");
			log_info("run", "%s", run_reason);
			return VIRIDIAN_EXIT_OK;
		}
		if (why == VID_STOP_SIGNAL && reset_req) {
			log_info("run", "reset requested: rebooting");
			continue;
		}
		switch (why) {
		case VID_STOP_POWEROFF:
			snprintf(run_reason, sizeof(run_reason), "guest powered off (%s)", detail);
			log_info("run", "%s", run_reason);
			return VIRIDIAN_EXIT_OK;
		case VID_STOP_RESET:
			if (o->no_reboot) {
				snprintf(run_reason, sizeof(run_reason), "guest reset (%s)",
					 detail);
				fprintf(stderr,
					"%s: guest reset (%s); exiting because of --no-reboot\n",
					run_prog, detail);
				return VIRIDIAN_EXIT_OK;
			}
			log_info("run", "guest reset (%s): rebooting", detail);
			continue;
		case VID_STOP_SIGNAL:
			snprintf(run_reason, sizeof(run_reason), "stopped by %s", detail);
			log_info("run", "%s", run_reason);
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

int run_config_check(const struct run_config *o)
{
	uint64_t host = run_host_memory();
	int r;

	if (o->memory < RUN_MIN_MEMORY)
		return run_fail(VIRIDIAN_EXIT_USAGE, "memory %llu MiB: at least 4 MiB is needed",
				(unsigned long long)(o->memory >> 20));
	if (!IS_ALIGNED(o->memory, 4096ull))
		return run_fail(VIRIDIAN_EXIT_USAGE, "memory: must be a multiple of 4K");
	if (host && o->memory > host)
		return run_fail(VIRIDIAN_EXIT_USAGE,
				"memory %llu MiB is more than this host's %llu MiB of RAM",
				(unsigned long long)(o->memory >> 20),
				(unsigned long long)(host >> 20));
	if (o->cpus == 0 || o->cpus > RUN_MAX_CPUS_XAPIC)
		return run_fail(VIRIDIAN_EXIT_USAGE, "cpus %u: expected 1 to %d", o->cpus,
				RUN_MAX_CPUS_XAPIC);
	if (!o->kernel)
		return run_fail(VIRIDIAN_EXIT_USAGE, "no kernel given");
	if (o->ndisks > RUN_MAX_DISKS)
		return run_fail(VIRIDIAN_EXIT_USAGE, "%u disks: at most %d", o->ndisks,
				RUN_MAX_DISKS);
	r = run_check_file("kernel", o->kernel);
	if (r == 0 && o->initrd)
		r = run_check_file("initrd", o->initrd);
	if (r == 0)
		r = run_check_disks(o);
	return r;
}

int run_vm(const struct run_config *o)
{
	struct rlimit no_core = {0, 0};
	static struct run_vm vm;
	struct serial_backend sb;
	struct run_serial sbops = {serial_backend_tx, run_sb_attach, &sb};
	const struct run_serial *ser = o->serial_ops ? o->serial_ops : &sbops;
	/* SA_RESTART: other syscalls the signal hits go on; KVM_RUN still ends with EINTR. */
	struct sigaction sa = {.sa_sigaction = run_pause_handler,
			       .sa_flags = SA_SIGINFO | SA_RESTART};
	struct vid_kvm kvm;
	sigset_t sigs;
	int r, sigfd;

	if (o->prog)
		run_prog = o->prog;
	run_reason[0] = 0;
	/* A failure is a line on stderr, never a core file. */
	setrlimit(RLIMIT_CORE, &no_core);
	log_set_vm_name(o->name ? o->name : "vm");
	if (o->ctl) {
		o->ctl->cfg = o;
		run_pause_ctl = o->ctl;
		sigemptyset(&sa.sa_mask);
		sigaction(run_pause_signal(), &sa, NULL);
	}
	run_notify(o, RUN_STATE_STARTING, "starting");
	memset(&vm, 0, sizeof(vm));
	/* Load before opening KVM so a bad kernel is reported as such on any host. */
	if (run_load(&vm, o) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err_msg());
		if (vm.mem_ok)
			guest_mem_destroy(&vm.mem);
		r = run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
		goto out;
	}
	if (vid_kvm_open(&kvm) < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err_msg());
		guest_mem_destroy(&vm.mem);
		r = run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
		goto out;
	}
	if (o->cpus > kvm.max_vcpus) {
		guest_mem_destroy(&vm.mem);
		vid_kvm_close(&kvm);
		r = run_fail(VIRIDIAN_EXIT_USAGE, "--cpus %u: this host's KVM supports at most %u",
			     o->cpus, kvm.max_vcpus);
		goto out;
	}
	/* Signals go to a signalfd; every thread created from here on inherits the mask. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sigfd < 0 || (!o->serial_ops && serial_backend_open(&sb, o->serial) < 0)) {
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", sigfd < 0 ? strerror(errno) : err_msg());
		guest_mem_destroy(&vm.mem);
		vid_kvm_close(&kvm);
		if (sigfd >= 0)
			close(sigfd);
		r = run_fail(VIRIDIAN_EXIT_ERROR, "%s", msg);
		goto out;
	}
	r = run_vm_loop(o, &vm, &kvm, ser, sigfd);
	if (!o->serial_ops)
		serial_backend_close(&sb);
	close(sigfd);
	vid_kvm_close(&kvm);
out:
	run_notify(o, RUN_STATE_OFF, "%s", run_reason[0] ? run_reason : "exited");
	return r;
}

int cmd_run(int argc, char **argv)
{
	struct run_config o;
	int r;

	r = run_parse(argc, argv, &o);
	if (r)
		return r < 0 ? VIRIDIAN_EXIT_OK : r;
	return run_vm(&o);
}
