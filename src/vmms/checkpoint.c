// SPDX-License-Identifier: GPL-2.0-only
/*
 * Offline checkpoints (VM Off). Taking checkpoint X freezes each writable disk
 * F and points the VM at a new differencing child of F (same format), created
 * next to F. <vm-dir>/checkpoints/X.json holds the VM config as it was (disk
 * paths = the frozen images) and the parent checkpoint, which makes the tree.
 *
 * Apply X: new empty children of X's frozen disks; the VM's previous children
 * are deleted (only with ?discard=true if the VM ran since its last checkpoint
 * operation, or its current checkpoint was deleted). Delete X, the rule:
 *  - X is the VM's current checkpoint and has no child checkpoint: each current
 *    child is merged into X's frozen image, which becomes the VM's disk again;
 *  - nothing depends on X (no child checkpoint, not current): X's frozen images
 *    that vmms created are deleted;
 *  - otherwise (child checkpoints need X's images): only the record goes, its
 *    children are re-parented to X's parent and the images stay in the chain.
 */
#include "vmms/core.h"

#include "disk/convert.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VMMS_MAX_CHECKPOINTS 64

struct vmms_cp {
	char name[VMMS_NAME_MAX + 1];
	char parent[VMMS_NAME_MAX + 1]; /* "" for a root */
	char created[32];
	struct vmms_config cfg;
};

struct vmms_cp_set {
	struct vmms_cp *cp[VMMS_MAX_CHECKPOINTS];
	unsigned n;
};

static void vmms_cp_set_free(struct vmms_cp_set *s)
{
	for (unsigned i = 0; i < s->n; i++) {
		vmms_config_free(&s->cp[i]->cfg);
		free(s->cp[i]);
	}
	s->n = 0;
}

static struct vmms_cp *vmms_cp_find(struct vmms_cp_set *s, const char *name)
{
	for (unsigned i = 0; i < s->n; i++)
		if (!strcmp(s->cp[i]->name, name))
			return s->cp[i];
	return NULL;
}

static int vmms_cp_parse(struct vmms_cp *cp, struct json_object *o)
{
	struct json_object *v;
	const char *code;

	if (!json_object_object_get_ex(o, "name", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    !vmms_name_valid(json_object_get_string(v)))
		return -1;
	snprintf(cp->name, sizeof(cp->name), "%s", json_object_get_string(v));
	cp->parent[0] = 0;
	if (json_object_object_get_ex(o, "parent", &v) &&
	    json_object_is_type(v, json_type_string)) {
		if (!vmms_name_valid(json_object_get_string(v)))
			return -1;
		snprintf(cp->parent, sizeof(cp->parent), "%s", json_object_get_string(v));
	}
	if (json_object_object_get_ex(o, "created", &v) && json_object_is_type(v, json_type_string))
		snprintf(cp->created, sizeof(cp->created), "%s", json_object_get_string(v));
	vmms_config_init(&cp->cfg);
	if (!json_object_object_get_ex(o, "config", &v) ||
	    vmms_config_apply(&cp->cfg, v, VMMS_CONFIG_STORED, &code)) {
		vmms_config_free(&cp->cfg);
		return -1;
	}
	return 0;
}

/* Reads every <vm-dir>/checkpoints/<name>.json (bad ones are logged and skipped). */
static int vmms_cp_load(struct vmms_vm *vm, struct vmms_cp_set *s)
{
	char dir[PATH_MAX + 16];
	struct dirent *e;
	DIR *d;

	s->n = 0;
	snprintf(dir, sizeof(dir), "%s/checkpoints", vm->dir);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d)) && s->n < VMMS_MAX_CHECKPOINTS) {
		size_t n = strlen(e->d_name);
		char p[PATH_MAX + 80];
		struct json_object *o;
		struct vmms_cp *cp;

		if (e->d_name[0] == '.' || n < 6 || strcmp(e->d_name + n - 5, ".json"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		o = json_object_from_file(p);
		cp = calloc(1, sizeof(*cp));
		if (!o || !cp || vmms_cp_parse(cp, o)) {
			log_warn("vmms", "ignoring checkpoint record %s: unreadable", p);
			free(cp);
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		s->cp[s->n++] = cp;
	}
	closedir(d);
	return 0;
}

static int vmms_cp_save(struct vmms_vm *vm, const struct vmms_cp *cp, const char **code)
{
	struct json_object *o = json_object_new_object();
	char p[PATH_MAX + 80];
	const char *s;
	int r;

	snprintf(p, sizeof(p), "%s/checkpoints", vm->dir);
	if (mkdir(p, 0700) < 0 && errno != EEXIST) {
		err_set("cannot create %s: %s", p, strerror(errno));
		*code = "internal";
		json_object_put(o);
		return -1;
	}
	json_object_object_add(o, "name", json_object_new_string(cp->name));
	json_object_object_add(o, "parent",
			       cp->parent[0] ? json_object_new_string(cp->parent) : NULL);
	json_object_object_add(o, "created", json_object_new_string(cp->created));
	json_object_object_add(o, "config", vmms_config_to_json(&cp->cfg, true));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	snprintf(p, sizeof(p), "%s/checkpoints/%s.json", vm->dir, cp->name);
	r = util_write_file_atomic(p, s, strlen(s), 0600);
	json_object_put(o);
	if (r < 0) {
		err_set("cannot write %s: %s", p, strerror(-r));
		*code = "internal";
		return -1;
	}
	return 0;
}

static void vmms_cp_unlink(struct vmms_vm *vm, const char *name)
{
	char p[PATH_MAX + 80];

	snprintf(p, sizeof(p), "%s/checkpoints/%s.json", vm->dir, name);
	unlink(p);
}

static struct json_object *vmms_cp_to_json(const struct vmms_cp *cp, const char *current)
{
	struct json_object *o = json_object_new_object(), *d = json_object_new_array();

	json_object_object_add(o, "name", json_object_new_string(cp->name));
	json_object_object_add(o, "parent",
			       cp->parent[0] ? json_object_new_string(cp->parent) : NULL);
	json_object_object_add(o, "created", json_object_new_string(cp->created));
	json_object_object_add(o, "current",
			       json_object_new_boolean(current && !strcmp(current, cp->name)));
	json_object_object_add(o, "memory_mb", json_object_new_int64(cp->cfg.memory_mb));
	json_object_object_add(o, "cpus", json_object_new_int64(cp->cfg.cpus));
	for (unsigned i = 0; i < cp->cfg.ndisks; i++)
		json_object_array_add(d, json_object_new_string(cp->cfg.disks[i].path));
	json_object_object_add(o, "disks", d);
	return o;
}

struct json_object *vmms_checkpoint_list(struct vmms_vm *vm, const char *current, const char **code)
{
	struct vmms_cp_set s;
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();

	vmms_cp_load(vm, &s);
	/* Oldest first, so a parent precedes its children. */
	for (unsigned i = 0; i < s.n; i++)
		for (unsigned j = i + 1; j < s.n; j++)
			if (strcmp(s.cp[j]->created, s.cp[i]->created) < 0) {
				struct vmms_cp *t = s.cp[i];

				s.cp[i] = s.cp[j];
				s.cp[j] = t;
			}
	for (unsigned i = 0; i < s.n; i++)
		json_object_array_add(a, vmms_cp_to_json(s.cp[i], current));
	json_object_object_add(o, "checkpoints", a);
	vmms_cp_set_free(&s);
	return o;
}

void vmms_checkpoint_images(struct vmms_vm *vm, void (*fn)(const char *path, void *opaque),
			    void *opaque)
{
	struct vmms_cp_set s;

	vmms_cp_load(vm, &s);
	for (unsigned i = 0; i < s.n; i++)
		for (unsigned k = 0; k < s.cp[i]->cfg.ndisks; k++)
			if (!s.cp[i]->cfg.disks[k].readonly)
				fn(s.cp[i]->cfg.disks[k].path, opaque);
	vmms_cp_set_free(&s);
}

/* "<dir>/<stem>_<8 hex>.<ext>" next to the parent, stem without an earlier suffix. */
static void vmms_child_path(const char *parent, enum disk_format fmt, char *out, size_t len)
{
	char dir[PATH_MAX], stem[256];
	const char *base = strrchr(parent, '/');
	uint32_t rnd;
	size_t n;

	snprintf(dir, sizeof(dir), "%.*s", (int)(base - parent), parent);
	snprintf(stem, sizeof(stem), "%s", base + 1);
	char *dot = strrchr(stem, '.');

	if (dot && dot != stem)
		*dot = 0;
	n = strlen(stem);
	if (n > 9 && stem[n - 9] == '_' && strspn(stem + n - 8, "0123456789abcdef") == 8)
		stem[n - 9] = 0;
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd = (uint32_t)util_now_ns();
	snprintf(out, len, "%s/%s_%08x.%s", dir, stem, rnd,
		 fmt == DISK_FORMAT_VHD ? "vhd" : "vhdx");
}

/* New differencing children of cfg's writable disks; cfg's paths are replaced. */
static int vmms_make_children(struct vmms_config *cfg, const char **code)
{
	unsigned made = 0;

	for (unsigned i = 0; i < cfg->ndisks; i++) {
		struct vmms_disk *d = &cfg->disks[i];

		if (d->readonly)
			continue;
		if (d->format != DISK_FORMAT_VHD && d->format != DISK_FORMAT_VHDX) {
			err_set("disk %s is %s; checkpoints need VHD or VHDX disks (convert it "
				"with 'viridian vhd convert')",
				d->path, disk_format_name(d->format));
			*code = "checkpoint_unsupported";
			goto fail;
		}
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		struct vmms_disk *d = &cfg->disks[i];
		struct disk_create_opts o = {.format = d->format, .type = DISK_TYPE_DIFFERENCING};
		char child[PATH_MAX];
		char *dup;

		if (d->readonly)
			continue;
		vmms_child_path(d->path, d->format, child, sizeof(child));
		o.parent = d->path;
		if (disk_create(child, &o) < 0 || !(dup = strdup(child))) {
			err_prefix("cannot create a differencing disk for %s", d->path);
			*code = "internal";
			unlink(child);
			goto fail;
		}
		free(d->path);
		d->path = dup;
		d->owned = true;
		made = i + 1;
	}
	return 0;
fail:
	/* cfg is the caller's scratch copy: remove what was created. */
	for (unsigned i = 0; i < made; i++)
		if (!cfg->disks[i].readonly && cfg->disks[i].owned)
			unlink(cfg->disks[i].path);
	return -1;
}

static void vmms_now_iso(char *out, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static unsigned vmms_cp_depth(struct vmms_cp_set *s, const char *name)
{
	unsigned d = 0;

	while (name && name[0] && d <= VMMS_MAX_CHECKPOINTS) {
		struct vmms_cp *cp = vmms_cp_find(s, name);

		d++;
		name = cp ? cp->parent : NULL;
	}
	return d;
}

/* Swap in the new config and save vm.json (generation moves on). */
static int vmms_vm_replace_config(struct vmms *m, struct vmms_vm *vm, struct vmms_config *ncfg,
				  const char **code)
{
	struct vmms_config old;
	int r;

	pthread_mutex_lock(&m->lock);
	old = vm->cfg;
	ncfg->generation = old.generation;
	memcpy(ncfg->uuid, old.uuid, sizeof(ncfg->uuid));
	snprintf(ncfg->name, sizeof(ncfg->name), "%s", old.name);
	vm->cfg = *ncfg;
	r = vmms_vm_save(m, vm, code);
	if (r) {
		vm->cfg = old;
	} else {
		*ncfg = old; /* caller frees the previous config */
		vmms_vm_set_state(m, vm, vm->state, NULL);
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

struct json_object *vmms_checkpoint_create(struct vmms *m, struct vmms_vm *vm, const char *name,
					   const char **code)
{
	struct vmms_cp_set s;
	struct vmms_cp *cp = NULL;
	struct vmms_config ncfg;
	struct json_object *out = NULL;

	if (!vmms_name_valid(name)) {
		err_set("invalid checkpoint name '%.80s': use 1..64 of A-Z a-z 0-9 . _ - and no "
			"leading '.'",
			name);
		*code = "invalid_name";
		return NULL;
	}
	vmms_cp_load(vm, &s);
	if (vmms_cp_find(&s, name)) {
		err_set("VM %s already has a checkpoint named '%s'", vm->cfg.name, name);
		*code = "already_exists";
		goto out;
	}
	if (s.n >= VMMS_MAX_CHECKPOINTS ||
	    vmms_cp_depth(&s, vm->cfg.checkpoint) + 2 >= DISK_MAX_CHAIN_DEPTH / 2) {
		err_set("VM %s has too many checkpoints (at most %d, chains of %d); delete some",
			vm->cfg.name, VMMS_MAX_CHECKPOINTS, DISK_MAX_CHAIN_DEPTH / 2);
		*code = "invalid_state";
		goto out;
	}
	cp = calloc(1, sizeof(*cp));
	if (!cp || vmms_config_copy(&cp->cfg, &vm->cfg)) {
		err_set("out of memory");
		*code = "internal";
		free(cp);
		cp = NULL;
		goto out;
	}
	snprintf(cp->name, sizeof(cp->name), "%s", name);
	snprintf(cp->parent, sizeof(cp->parent), "%s",
		 vm->cfg.checkpoint ? vm->cfg.checkpoint : "");
	vmms_now_iso(cp->created, sizeof(cp->created));
	if (vmms_config_copy(&ncfg, &vm->cfg))
		goto out_cp;
	if (vmms_make_children(&ncfg, code)) {
		vmms_config_free(&ncfg);
		goto out_cp;
	}
	free(ncfg.checkpoint);
	ncfg.checkpoint = strdup(name);
	ncfg.checkpoint_dirty = false;
	/* vm.json first: after a crash in between, the VM runs on the children and the frozen
	 * images stay intact (only the record is missing). */
	if (vmms_vm_replace_config(m, vm, &ncfg, code)) {
		for (unsigned i = 0; i < ncfg.ndisks; i++)
			if (!ncfg.disks[i].readonly && ncfg.disks[i].owned)
				unlink(ncfg.disks[i].path);
		vmms_config_free(&ncfg);
		goto out_cp;
	}
	vmms_config_free(&ncfg);
	if (vmms_cp_save(vm, cp, code))
		goto out_cp;
	log_info("vmms", "VM %s: checkpoint %s taken", vm->cfg.name, name);
	out = vmms_cp_to_json(cp, name);
out_cp:
	vmms_config_free(&cp->cfg);
	free(cp);
out:
	vmms_cp_set_free(&s);
	return out;
}

static bool vmms_cp_holds(struct vmms_cp_set *s, const char *path)
{
	for (unsigned i = 0; i < s->n; i++)
		for (unsigned k = 0; k < s->cp[i]->cfg.ndisks; k++)
			if (!strcmp(s->cp[i]->cfg.disks[k].path, path))
				return true;
	return false;
}

int vmms_checkpoint_apply(struct vmms *m, struct vmms_vm *vm, const char *name, bool discard,
			  const char **code)
{
	struct vmms_cp_set s;
	struct vmms_config ncfg;
	struct vmms_cp *cp;
	int r = -1;

	vmms_cp_load(vm, &s);
	cp = vmms_cp_find(&s, name);
	if (!cp) {
		err_set("VM %s has no checkpoint named '%.80s'", vm->cfg.name, name);
		*code = "checkpoint_not_found";
		goto out;
	}
	if (vm->cfg.checkpoint_dirty && !discard) {
		err_set("VM %s has run since its last checkpoint; applying '%s' discards that state: "
			"add ?discard=true (or take a checkpoint first)",
			vm->cfg.name, name);
		*code = "would_discard";
		goto out;
	}
	if (vmms_config_copy(&ncfg, &cp->cfg)) {
		*code = "internal";
		goto out;
	}
	if (vmms_make_children(&ncfg, code)) {
		vmms_config_free(&ncfg);
		goto out;
	}
	free(ncfg.checkpoint);
	ncfg.checkpoint = strdup(name);
	ncfg.checkpoint_dirty = false;
	if (vmms_vm_replace_config(m, vm, &ncfg, code)) {
		for (unsigned i = 0; i < ncfg.ndisks; i++)
			if (!ncfg.disks[i].readonly && ncfg.disks[i].owned)
				unlink(ncfg.disks[i].path);
		vmms_config_free(&ncfg);
		goto out;
	}
	/* ncfg now holds the previous config: drop its children that no checkpoint holds. */
	for (unsigned i = 0; i < ncfg.ndisks; i++) {
		const char *p = ncfg.disks[i].path;

		if (ncfg.disks[i].owned && !ncfg.disks[i].readonly && !vmms_cp_holds(&s, p)) {
			log_info("vmms", "VM %s: discarding %s", vm->cfg.name, p);
			unlink(p);
		}
	}
	vmms_config_free(&ncfg);
	log_info("vmms", "VM %s: checkpoint %s applied", vm->cfg.name, name);
	r = 0;
out:
	vmms_cp_set_free(&s);
	return r;
}

static bool vmms_same_path(const char *a, const char *b)
{
	struct stat sa, sb;

	if (!strcmp(a, b))
		return true;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* Merge each current child of X's frozen images back into them. */
static int vmms_cp_merge_current(struct vmms *m, struct vmms_vm *vm, struct vmms_cp *x,
				 struct vmms_cp_set *s, const char **code)
{
	struct vmms_config ncfg;

	if (vmms_config_copy(&ncfg, &vm->cfg)) {
		*code = "internal";
		return -1;
	}
	for (unsigned i = 0; i < ncfg.ndisks; i++) {
		struct vmms_disk *d = &ncfg.disks[i];
		char parent[PATH_MAX] = "";
		char *dup;
		bool owned_parent = false;
		int k;

		if (d->readonly || !d->owned || vmms_cp_holds(s, d->path))
			continue;
		if (disk_merge_generic(d->path, NULL, NULL, parent) < 0) {
			err_prefix("cannot merge %s into its parent", d->path);
			*code = "internal";
			vmms_config_free(&ncfg);
			return -1;
		}
		for (k = 0; k < (int)x->cfg.ndisks; k++)
			if (vmms_same_path(x->cfg.disks[k].path, parent))
				break;
		if (k < (int)x->cfg.ndisks)
			owned_parent = x->cfg.disks[k].owned;
		dup = strdup(k < (int)x->cfg.ndisks ? x->cfg.disks[k].path : parent);
		if (!dup) {
			*code = "internal";
			vmms_config_free(&ncfg);
			return -1;
		}
		unlink(d->path);
		free(d->path);
		d->path = dup;
		d->owned = owned_parent;
	}
	free(ncfg.checkpoint);
	ncfg.checkpoint = x->parent[0] ? strdup(x->parent) : NULL;
	/* The merged disks hold X's state plus later changes, which no remaining checkpoint
	 * has: applying one must ask for ?discard=true. */
	ncfg.checkpoint_dirty = true;
	if (vmms_vm_replace_config(m, vm, &ncfg, code)) {
		vmms_config_free(&ncfg);
		return -1;
	}
	vmms_config_free(&ncfg);
	return 0;
}

int vmms_checkpoint_delete(struct vmms *m, struct vmms_vm *vm, const char *name, const char **code)
{
	struct vmms_cp_set s;
	struct vmms_cp *x;
	unsigned nchildren = 0;
	bool current;
	int r = -1;

	vmms_cp_load(vm, &s);
	x = vmms_cp_find(&s, name);
	if (!x) {
		err_set("VM %s has no checkpoint named '%.80s'", vm->cfg.name, name);
		*code = "checkpoint_not_found";
		goto out;
	}
	current = vm->cfg.checkpoint && !strcmp(vm->cfg.checkpoint, name);
	for (unsigned i = 0; i < s.n; i++)
		if (!strcmp(s.cp[i]->parent, name))
			nchildren++;
	if (!nchildren && current) {
		if (vmms_cp_merge_current(m, vm, x, &s, code))
			goto out;
	} else if (!nchildren) {
		for (unsigned k = 0; k < x->cfg.ndisks; k++) {
			struct vmms_disk *d = &x->cfg.disks[k];
			bool held = false;

			for (unsigned i = 0; i < s.n && !held; i++)
				for (unsigned j = 0; s.cp[i] != x && j < s.cp[i]->cfg.ndisks; j++)
					held |= !strcmp(s.cp[i]->cfg.disks[j].path, d->path);
			for (unsigned j = 0; j < vm->cfg.ndisks; j++)
				held |= !strcmp(vm->cfg.disks[j].path, d->path);
			if (d->owned && !d->readonly && !held) {
				log_info("vmms", "VM %s: deleting %s", vm->cfg.name, d->path);
				unlink(d->path);
			}
		}
	} else {
		for (unsigned i = 0; i < s.n; i++) {
			if (strcmp(s.cp[i]->parent, name))
				continue;
			snprintf(s.cp[i]->parent, sizeof(s.cp[i]->parent), "%s", x->parent);
			if (vmms_cp_save(vm, s.cp[i], code))
				goto out;
		}
		if (current) {
			struct vmms_config ncfg;

			if (vmms_config_copy(&ncfg, &vm->cfg)) {
				*code = "internal";
				goto out;
			}
			free(ncfg.checkpoint);
			ncfg.checkpoint = x->parent[0] ? strdup(x->parent) : NULL;
			ncfg.checkpoint_dirty = true; /* X's state is no longer a checkpoint */
			r = vmms_vm_replace_config(m, vm, &ncfg, code);
			vmms_config_free(&ncfg);
			if (r)
				goto out;
			r = -1;
		}
	}
	vmms_cp_unlink(vm, name);
	log_info("vmms", "VM %s: checkpoint %s deleted", vm->cfg.name, name);
	r = 0;
out:
	vmms_cp_set_free(&s);
	return r;
}
