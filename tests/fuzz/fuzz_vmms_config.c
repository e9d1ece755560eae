// SPDX-License-Identifier: GPL-2.0-only
/*
 * vmms request-body fuzzer: the input is a REST body (POST /v1/vms, PATCH) or a
 * vm.json from disk; it goes through the strict parser in every mode, and what
 * parses is serialised and parsed again (stored mode) to the same config.
 */
#include "lib/log.h"
#include "vmms/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum vmms_config_mode modes[] = {VMMS_CONFIG_CREATE, VMMS_CONFIG_PATCH,
						      VMMS_CONFIG_STORED};
	struct json_object *o;

	log_set_level(LOG_ERROR);
	o = vmms_json_parse((const char *)data, size);
	if (!o)
		return 0;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct vmms_config c, d;
		struct json_object *out;
		const char *code;

		vmms_config_init(&c);
		if (modes[i] == VMMS_CONFIG_PATCH) {
			/* PATCH applies to an existing VM. */
			snprintf(c.name, sizeof(c.name), "vm");
			c.kernel = strdup("/k");
		}
		if (vmms_config_apply(&c, o, modes[i], &code) == 0) {
			if (!c.uuid[0])
				vmms_uuid_generate(c.uuid);
			if (!c.generation)
				c.generation = 1;
			out = vmms_config_to_json(&c, true);
			vmms_config_init(&d);
			if (vmms_config_apply(&d, out, VMMS_CONFIG_STORED, &code) != 0 ||
			    d.memory_mb != c.memory_mb || d.cpus != c.cpus ||
			    d.ndisks != c.ndisks || d.ndevices != c.ndevices)
				abort();
			vmms_config_free(&d);
			json_object_put(out);
		}
		vmms_config_free(&c);
	}
	json_object_put(o);
	return 0;
}
