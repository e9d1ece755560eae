// SPDX-License-Identifier: GPL-2.0-only
/*
 * VM registry: <state-dir>/vms/<name>/vm.json per VM, written atomically with a
 * generation counter. The in-memory copy is only a cache of what is on disk;
 * runtime state (worker pid, Running/Paused) comes from the workers.
 */
#include "vmms/core.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const vmms_state_names[] = {
	[VMMS_OFF] = "Off",	  [VMMS_STARTING] = "Starting", [VMMS_RUNNING] = "Running",
	[VMMS_PAUSED] = "Paused", [VMMS_STOPPING] = "Stopping", [VMMS_CRITICAL] = "Critical",
};

const char *vmms_state_name(enum vmms_state s)
{
	if ((unsigned)s < ARRAY_SIZE(vmms_state_names))
		return vmms_state_names[s];
	return "Unknown";
}

int vmms_code_http(const char *code)
{
	static const struct {
		const char *code;
		int http;
	} map[] = {
		{"not_found", 404},
		{"checkpoint_not_found", 404},
		{"method_not_allowed", 405},
		{"already_exists", 409},
		{"invalid_state", 409},
		{"busy", 409},
		{"disk_in_use", 409},
		{"start_failed", 409},
		{"would_discard", 409},
		{"checkpoint_unsupported", 409},
		{"too_many_vms", 409},
		{"body_too_large", 413},
		{"unsupported_media_type", 415},
		{"internal", 500},
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (!strcmp(map[i].code, code))
			return map[i].http;
	return 400;
}

static int vmms_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (n >= sizeof(buf)) {
		err_set("path '%.100s...' is too long", path);
		return -1;
	}
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			err_set("cannot create directory %s: %s", buf, strerror(errno));
			return -1;
		}
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST) {
		err_set("cannot create directory %s: %s", buf, strerror(errno));
		return -1;
	}
	return 0;
}

int vmms_init(struct vmms *m, const char *state_dir)
{
	memset(m, 0, sizeof(*m));
	m->epfd = -1;
	m->wake_fd = -1;
	m->start_timeout_ms = 30000;
	snprintf(m->log_level, sizeof(m->log_level), "info");
	if (state_dir[0] != '/') {
		err_set("--state-dir must be an absolute path");
		return -1;
	}
	if (snprintf(m->state_dir, sizeof(m->state_dir), "%s", state_dir) >=
		    (int)sizeof(m->state_dir) ||
	    snprintf(m->vms_dir, sizeof(m->vms_dir), "%s/vms", state_dir) >=
		    (int)sizeof(m->vms_dir)) {
		err_set("--state-dir path is too long");
		return -1;
	}
	if (vmms_mkdir_p(m->state_dir, 0755) || vmms_mkdir_p(m->vms_dir, 0700))
		return -1;
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

static void vmms_vm_invalidate(struct vmms_vm *vm)
{
	free(vm->json);
	vm->json = NULL;
}

static void vmms_vm_free(struct vmms_vm *vm)
{
	vmms_vm_invalidate(vm);
	vmms_config_free(&vm->cfg);
	free(vm->ctl);
	free(vm);
}

void vmms_fini(struct vmms *m)
{
	for (size_t i = 0; i < m->nvms; i++) {
		struct vmms_vm *vm = m->vms[i];

		if (vm->ctl && vm->ctl->fd >= 0)
			close(vm->ctl->fd);
		if (vm->pidfd >= 0)
			close(vm->pidfd);
		vmms_vm_free(vm);
	}
	free(m->vms);
	m->vms = NULL;
	m->nvms = 0;
}

static struct vmms_vm *vmms_vm_alloc(const char *vms_dir, const char *name)
{
	struct vmms_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return NULL;
	vm->pidfd = -1;
	vm->state = VMMS_OFF;
	snprintf(vm->dir, sizeof(vm->dir), "%s/%s", vms_dir, name);
	return vm;
}

/* Sorted insert keeps GET /v1/vms in name order. */
static int vmms_vm_insert(struct vmms *m, struct vmms_vm *vm)
{
	struct vmms_vm **n = realloc(m->vms, (m->nvms + 1) * sizeof(*n));
	size_t i;

	if (!n) {
		err_set("out of memory");
		return -1;
	}
	m->vms = n;
	for (i = 0; i < m->nvms && strcmp(m->vms[i]->cfg.name, vm->cfg.name) < 0; i++)
		;
	memmove(&m->vms[i + 1], &m->vms[i], (m->nvms - i) * sizeof(*n));
	m->vms[i] = vm;
	m->nvms++;
	return 0;
}

struct vmms_vm *vmms_vm_find(struct vmms *m, const char *name)
{
	size_t lo = 0, hi = m->nvms;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(m->vms[mid]->cfg.name, name);

		if (!c)
			return m->vms[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static char *vmms_read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || util_pread_full(fd, buf, (size_t)st.st_size, 0) < 0) {
		free(buf);
		close(fd);
		errno = EIO;
		return NULL;
	}
	close(fd);
	buf[st.st_size] = 0;
	*len = (size_t)st.st_size;
	return buf;
}

/* Removes vm.json.tmp.* left by a crash between write and rename. */
static void vmms_clean_temp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];

		if (strncmp(e->d_name, "vm.json.tmp.", 12))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		log_warn("vmms", "removing half-written %s (the previous vm.json stays)", p);
		unlink(p);
	}
	closedir(d);
}

static int vmms_rm_cb(const char *p, const struct stat *st, int type, struct FTW *f)
{
	if (remove(p) < 0)
		log_warn("vmms", "cannot remove %s: %s", p, strerror(errno));
	return 0;
}

static void vmms_rm_rf(const char *path)
{
	nftw(path, vmms_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int vmms_registry_load(struct vmms *m)
{
	DIR *d = opendir(m->vms_dir);
	struct dirent *e;

	if (!d) {
		err_set("cannot open %s: %s", m->vms_dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		char path[PATH_MAX];
		struct json_object *o;
		struct vmms_vm *vm;
		const char *code;
		size_t len;
		char *buf;

		if (!strncmp(e->d_name, ".deleted-", 9)) {
			/* A removal interrupted by a crash. */
			snprintf(path, sizeof(path), "%s/%s", m->vms_dir, e->d_name);
			vmms_rm_rf(path);
			continue;
		}
		if (e->d_name[0] == '.')
			continue;
		if (!vmms_name_valid(e->d_name)) {
			log_warn("vmms", "ignoring %s/%s: not a valid VM name", m->vms_dir,
				 e->d_name);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", m->vms_dir, e->d_name);
		vmms_clean_temp(path);
		snprintf(path, sizeof(path), "%s/%s/vm.json", m->vms_dir, e->d_name);
		buf = vmms_read_file(path, 1 << 20, &len);
		if (!buf) {
			log_warn("vmms", "ignoring VM directory %s/%s: no readable vm.json",
				 m->vms_dir, e->d_name);
			continue;
		}
		o = vmms_json_parse(buf, len);
		free(buf);
		vm = vmms_vm_alloc(m->vms_dir, e->d_name);
		if (!o || !vm) {
			log_error("vmms", "ignoring %s: %s", path, o ? "out of memory" : err_msg());
			json_object_put(o);
			free(vm);
			continue;
		}
		vmms_config_init(&vm->cfg);
		if (vmms_config_apply(&vm->cfg, o, VMMS_CONFIG_STORED, &code) ||
		    strcmp(vm->cfg.name, e->d_name)) {
			log_error("vmms", "ignoring %s: %s", path,
				  strcmp(vm->cfg.name, e->d_name)
					  ? "name differs from its directory"
					  : err_msg());
			json_object_put(o);
			vmms_vm_free(vm);
			continue;
		}
		json_object_put(o);
		snprintf(path, sizeof(path), "%s/%s/critical", m->vms_dir, e->d_name);
		buf = vmms_read_file(path, VMMS_REASON_MAX - 1, &len);
		if (buf) {
			/* Adoption replaces this when the worker is in fact alive. */
			vm->state = VMMS_CRITICAL;
			snprintf(vm->reason, sizeof(vm->reason), "%.*s", (int)len, buf);
			free(buf);
		}
		if (m->nvms >= VMMS_MAX_VMS || vmms_vm_insert(m, vm)) {
			log_error("vmms", "ignoring %s: too many VMs", path);
			vmms_vm_free(vm);
			continue;
		}
		log_debug("vmms", "loaded VM %s generation %llu", vm->cfg.name,
			  (unsigned long long)vm->cfg.generation);
	}
	closedir(d);
	log_info("vmms", "%zu VM(s) registered in %s", m->nvms, m->vms_dir);
	return 0;
}

int vmms_vm_save(struct vmms *m, struct vmms_vm *vm, const char **code)
{
	struct json_object *o;
	const char *s;
	char path[PATH_MAX];
	int r;

	vmms_vm_invalidate(vm);
	vm->cfg.generation++;
	o = vmms_config_to_json(&vm->cfg, true);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(path, sizeof(path), "%s/vm.json", vm->dir);
	r = util_write_file_atomic(path, s, strlen(s), 0600);
	json_object_put(o);
	if (r < 0) {
		vm->cfg.generation--;
		err_set("cannot write %s: %s", path, strerror(-r));
		*code = "internal";
		return -1;
	}
	return 0;
}

int vmms_vm_create(struct vmms *m, struct vmms_config *cfg, struct vmms_vm **out, const char **code)
{
	struct vmms_vm *vm;
	char path[PATH_MAX];

	if (vmms_vm_find(m, cfg->name)) {
		err_set("a VM named '%s' already exists", cfg->name);
		*code = "already_exists";
		return -1;
	}
	if (m->nvms >= VMMS_MAX_VMS) {
		err_set("this host already has %d VMs, the limit", VMMS_MAX_VMS);
		*code = "too_many_vms";
		return -1;
	}
	vm = vmms_vm_alloc(m->vms_dir, cfg->name);
	if (!vm) {
		err_set("out of memory");
		*code = "internal";
		return -1;
	}
	if (mkdir(vm->dir, 0700) < 0) {
		/* A directory without vm.json is a leftover of an interrupted create. */
		snprintf(path, sizeof(path), "%s/vm.json", vm->dir);
		if (errno != EEXIST || access(path, F_OK) == 0) {
			err_set("cannot create %s: %s", vm->dir,
				errno == EEXIST ? "it already exists" : strerror(errno));
			*code = errno == EEXIST ? "already_exists" : "internal";
			free(vm);
			return -1;
		}
	}
	vm->cfg = *cfg;
	vmms_uuid_generate(vm->cfg.uuid);
	vm->cfg.generation = 0;
	if (vmms_vm_save(m, vm, code) || vmms_vm_insert(m, vm)) {
		*code = "internal";
		snprintf(path, sizeof(path), "%s/vm.json", vm->dir);
		unlink(path);
		rmdir(vm->dir);
		free(vm);
		return -1;
	}
	memset(cfg, 0, sizeof(*cfg));
	log_info("vmms", "created VM %s (%s)", vm->cfg.name, vm->cfg.uuid);
	*out = vm;
	return 0;
}

struct vmms_path_list {
	char *paths[VMMS_MAX_DISKS * 66];
	unsigned n;
};

static void vmms_path_list_add(const char *path, void *opaque)
{
	struct vmms_path_list *l = opaque;

	for (unsigned i = 0; i < l->n; i++)
		if (!strcmp(l->paths[i], path))
			return;
	if (l->n < ARRAY_SIZE(l->paths))
		l->paths[l->n++] = strdup(path);
}

int vmms_vm_remove(struct vmms *m, struct vmms_vm *vm, bool delete_disks, const char **code)
{
	char tomb[PATH_MAX];
	struct vmms_path_list *l = NULL;
	size_t i;

	if (delete_disks) {
		l = calloc(1, sizeof(*l));
		if (!l) {
			err_set("out of memory");
			*code = "internal";
			return -1;
		}
		for (unsigned k = 0; k < vm->cfg.ndisks; k++)
			if (!vm->cfg.disks[k].readonly)
				vmms_path_list_add(vm->cfg.disks[k].path, l);
		vmms_checkpoint_images(vm, vmms_path_list_add, l);
	}
	snprintf(tomb, sizeof(tomb), "%s/.deleted-%s-%s", m->vms_dir, vm->cfg.name, vm->cfg.uuid);
	if (rename(vm->dir, tomb) < 0) {
		err_set("cannot remove %s: %s", vm->dir, strerror(errno));
		*code = "internal";
		if (l)
			for (unsigned k = 0; k < l->n; k++)
				free(l->paths[k]);
		free(l);
		return -1;
	}
	vmms_rm_rf(tomb);
	if (l) {
		for (unsigned k = 0; k < l->n; k++) {
			if (l->paths[k] && unlink(l->paths[k]) < 0 && errno != ENOENT)
				log_warn("vmms", "VM %s: cannot delete disk %s: %s", vm->cfg.name,
					 l->paths[k], strerror(errno));
			else if (l->paths[k])
				log_info("vmms", "VM %s: deleted disk %s", vm->cfg.name,
					 l->paths[k]);
			free(l->paths[k]);
		}
		free(l);
	}
	for (i = 0; i < m->nvms && m->vms[i] != vm; i++)
		;
	if (i < m->nvms) {
		memmove(&m->vms[i], &m->vms[i + 1], (m->nvms - i - 1) * sizeof(*m->vms));
		m->nvms--;
	}
	log_info("vmms", "removed VM %s", vm->cfg.name);
	vm->gone = true;
	if (!vm->users)
		vmms_vm_free(vm);
	return 0;
}

void vmms_vm_get(struct vmms_vm *vm)
{
	vm->users++;
}

void vmms_vm_put(struct vmms *m, struct vmms_vm *vm)
{
	if (--vm->users == 0 && vm->gone)
		vmms_vm_free(vm);
}

static bool vmms_state_live(enum vmms_state s)
{
	return s != VMMS_OFF && s != VMMS_CRITICAL;
}

struct json_object *vmms_vm_to_json(struct vmms *m, struct vmms_vm *vm)
{
	struct json_object *o = vmms_config_to_json(&vm->cfg, false);

	json_object_object_add(o, "state", json_object_new_string(vmms_state_name(vm->state)));
	if (vm->reason[0])
		json_object_object_add(o, "reason", json_object_new_string(vm->reason));
	if (vmms_state_live(vm->state) && vm->state != VMMS_STARTING) {
		char p[PATH_MAX + 16];

		snprintf(p, sizeof(p), "%s/console.sock", vm->dir);
		json_object_object_add(o, "console_socket", json_object_new_string(p));
	}
	if (vm->pid > 0)
		json_object_object_add(o, "pid", json_object_new_int(vm->pid));
	return o;
}

const char *vmms_vm_json_text(struct vmms *m, struct vmms_vm *vm, size_t *len)
{
	if (!vm->json) {
		struct json_object *o = vmms_vm_to_json(m, vm);
		size_t n;
		const char *t = json_object_to_json_string_length(
			o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);

		vm->json = t ? strndup(t, n) : NULL;
		vm->json_len = vm->json ? n : 0;
		json_object_put(o);
	}
	*len = vm->json_len;
	return vm->json;
}

static void vmms_event_emit(struct vmms *m, struct vmms_vm *vm)
{
	struct json_object *o = json_object_new_object();
	struct vmms_event *e;

	json_object_object_add(o, "vm", json_object_new_string(vm->cfg.name));
	json_object_object_add(o, "state", json_object_new_string(vmms_state_name(vm->state)));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)vm->cfg.generation));
	json_object_object_add(o, "reason", json_object_new_string(vm->reason));
	m->event_seq++;
	e = &m->events[m->event_seq % VMMS_EVENT_RING];
	e->seq = m->event_seq;
	snprintf(e->line, sizeof(e->line), "%s\n",
		 json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

void vmms_vm_set_state(struct vmms *m, struct vmms_vm *vm, enum vmms_state s, const char *reason)
{
	bool changed = vm->state != s || (reason && strcmp(reason, vm->reason));
	enum vmms_state old = vm->state;
	char path[PATH_MAX + 16];

	vmms_vm_invalidate(vm); /* pid and console socket move with the state too */
	vm->state = s;
	if (reason)
		snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
	else if (s == VMMS_RUNNING || s == VMMS_STARTING)
		vm->reason[0] = 0;
	/* Critical and its reason survive a restart of vmms: <vm-dir>/critical. */
	snprintf(path, sizeof(path), "%s/critical", vm->dir);
	if (s == VMMS_CRITICAL && changed) {
		int r = util_write_file_atomic(path, vm->reason, strlen(vm->reason), 0600);

		if (r < 0)
			log_warn("vmms", "cannot write %s: %s", path, strerror(-r));
	} else if (old == VMMS_CRITICAL && s != VMMS_CRITICAL) {
		unlink(path);
	}
	if (changed) {
		log_info("vmms", "VM %s: %s%s%s", vm->cfg.name, vmms_state_name(s),
			 vm->reason[0] ? ": " : "", vm->reason);
		vmms_event_emit(m, vm);
	}
	pthread_cond_broadcast(&m->cond);
}

static bool vmms_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return false;
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

struct vmms_vm *vmms_disk_user(struct vmms *m, const struct vmms_config *cfg,
			       const struct vmms_vm *self, const char **path)
{
	for (size_t i = 0; i < m->nvms; i++) {
		struct vmms_vm *o = m->vms[i];

		if (o == self || !vmms_state_live(o->state))
			continue;
		for (unsigned a = 0; a < cfg->ndisks; a++)
			for (unsigned b = 0; b < o->cfg.ndisks; b++)
				if ((!cfg->disks[a].readonly || !o->cfg.disks[b].readonly) &&
				    vmms_same_file(cfg->disks[a].path, o->cfg.disks[b].path)) {
					*path = cfg->disks[a].path;
					return o;
				}
	}
	return NULL;
}

void vmms_vm_log_tail(struct vmms_vm *vm, char *out, size_t len)
{
	char path[PATH_MAX], buf[4096];
	ssize_t n;
	off_t size;
	int fd;

	out[0] = 0;
	snprintf(path, sizeof(path), "%s/worker.log", vm->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0) {
		close(fd);
		return;
	}
	n = pread(fd, buf, sizeof(buf) - 1,
		  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *start = strrchr(buf, '\n');

	start = start ? start + 1 : buf;
	for (char *p = start; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	snprintf(out, len, "%s", start);
}

int vmms_event_next(struct vmms *m, uint64_t *seq, char *line, size_t len, unsigned timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!m->quit && m->event_seq <= *seq)
		if (pthread_cond_timedwait(&m->cond, &m->lock, &ts) == ETIMEDOUT)
			break;
	if (m->quit)
		return -1;
	if (m->event_seq <= *seq)
		return 0;
	/* A reader that fell behind the ring skips to the oldest kept event. */
	if (m->event_seq - *seq > VMMS_EVENT_RING)
		*seq = m->event_seq - VMMS_EVENT_RING;
	(*seq)++;
	snprintf(line, len, "%s", m->events[*seq % VMMS_EVENT_RING].line);
	return 1;
}
