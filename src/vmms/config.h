/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * VM configuration (vm.json): parsing with strict validation, serialisation.
 * The REST layer and the registry loader share these rules.
 */
#ifndef VIRIDIAN_VMMS_CONFIG_H
#define VIRIDIAN_VMMS_CONFIG_H

#include "disk/disk.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define VMMS_NAME_MAX 64
#define VMMS_MAX_DISKS 16
#define VMMS_MAX_DEVICES 16
#define VMMS_MEM_MIN_MB 32
#define VMMS_MEM_MAX_MB 65536
#define VMMS_MEM_DEFAULT_MB 256
#define VMMS_CPUS_MAX 64
#define VMMS_CMDLINE_MAX 4096
#define VMMS_PATH_MAX 1024
#define VMMS_USER_MAX 32

struct vmms_disk {
	char *path;
	bool readonly;
	enum disk_format format;
	bool owned; /* created by vmms (checkpoint child): stored in vm.json only */
};

struct vmms_config {
	char name[VMMS_NAME_MAX + 1];
	char uuid[37];
	uint64_t generation;
	uint32_t memory_mb;
	uint32_t cpus;
	char *kernel;
	char *initrd; /* NULL when absent */
	char *cmdline; /* NULL when absent */
	char *user; /* NULL when absent */
	struct vmms_disk disks[VMMS_MAX_DISKS];
	unsigned ndisks;
	char *devices[VMMS_MAX_DEVICES];
	unsigned ndevices;
	/* Managed by vmms (read-only through the API): checkpoint the VM derives from. */
	char *checkpoint;
	/* The VM has run since that checkpoint was taken or applied. */
	bool checkpoint_dirty;
};

enum vmms_config_mode {
	VMMS_CONFIG_CREATE, /* POST body: name + settings; files must exist */
	VMMS_CONFIG_PATCH, /* PATCH body: any subset of settings; files must exist */
	VMMS_CONFIG_STORED, /* vm.json from disk: uuid/generation required, files not checked */
};

/*
 * Applies the JSON object o to c (which holds defaults or the current config).
 * Returns 0, or -1 with err_set() and *code set to a snake_case error code.
 * On failure c may be partly modified: callers work on a copy.
 */
int vmms_config_apply(struct vmms_config *c, struct json_object *o, enum vmms_config_mode mode,
		      const char **code);
void vmms_config_init(struct vmms_config *c);
void vmms_config_free(struct vmms_config *c);
int vmms_config_copy(struct vmms_config *dst, const struct vmms_config *src);
/* stored = include vmms-managed fields (for vm.json). */
struct json_object *vmms_config_to_json(const struct vmms_config *c, bool stored);

/* Name rules shared by VMs and checkpoints: [A-Za-z0-9._-], 1..64, no leading '.'. */
bool vmms_name_valid(const char *name);
/* Parses one JSON document, rejecting trailing data; NULL with err_set(). */
struct json_object *vmms_json_parse(const char *buf, size_t len);
void vmms_uuid_generate(char out[37]);

#endif
