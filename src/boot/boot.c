// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel loading front end: reads the kernel file, picks the loader by format,
 * and holds the pieces both loaders share (command line, initrd, boot GDT).
 */
#include "boot/boot.h"
#include "boot/boot_internal.h"
#include "lib/err.h"
#include "lib/util.h"
#include "vid/layout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1024ull * 1024)

/* Reads a whole regular file no larger than max bytes. */
static int boot_read_file(const char *path, const char *what, uint64_t max, uint8_t **data,
			  size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		err_set("cannot open %s '%s': %s", what, path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set("%s '%s' is not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		err_set("%s '%s' (%llu bytes) is too large for %lluM of guest RAM", what, path,
			(unsigned long long)st.st_size, (unsigned long long)(max / MIB));
		close(fd);
		return -EFBIG;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		err_set("out of memory reading %s '%s'", what, path);
		close(fd);
		return -ENOMEM;
	}
	ret = util_pread_full(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (ret < 0) {
		err_set("cannot read %s '%s'", what, path);
		free(buf);
		return -EIO;
	}
	*data = buf;
	*len = (size_t)st.st_size;
	return 0;
}

int boot_load_image(struct guest_mem *gm, const uint8_t *img, size_t len, const char *name,
		    const struct boot_config *cfg, struct boot_result *out)
{
	memset(out, 0, sizeof(*out));
	if (len >= 4 && !memcmp(img,
				"\x7f"
				"ELF",
				4))
		return boot_load_pvh(gm, img, len, name, cfg, out);
	if (len >= HDR_MAGIC + 4 && !memcmp(img + HDR_MAGIC, "HdrS", 4))
		return boot_load_bzimage(gm, img, len, name, cfg, out);
	err_set("'%s' is not a Linux bzImage or an ELF kernel with a PVH note", name);
	return -ENOEXEC;
}

int boot_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out)
{
	uint8_t *img = NULL;
	size_t len = 0;
	int ret;

	if (!cfg->kernel_path) {
		err_set("no kernel given (use --kernel PATH)");
		return -EINVAL;
	}
	ret = boot_read_file(cfg->kernel_path, "kernel", gm->ram_size, &img, &len);
	if (ret) {
		if (ret == -EFBIG)
			err_set("kernel too large for %lluM of guest RAM",
				(unsigned long long)(gm->ram_size / MIB));
		return ret;
	}
	ret = boot_load_image(gm, img, len, cfg->kernel_path, cfg, out);
	free(img);
	return ret;
}

int boot_write_cmdline(struct guest_mem *gm, const struct boot_config *cfg, uint64_t max_len)
{
	const char *s = cfg->cmdline ? cfg->cmdline : "";
	size_t len = strlen(s);

	if (max_len > LAYOUT_CMDLINE_MAX - 1)
		max_len = LAYOUT_CMDLINE_MAX - 1;
	if (len > max_len) {
		err_set("kernel command line is %zu bytes, the kernel accepts at most %llu", len,
			(unsigned long long)max_len);
		return -E2BIG;
	}
	if (guest_mem_write(gm, LAYOUT_CMDLINE_GPA, s, len + 1)) {
		err_set("guest RAM too small for the kernel command line");
		return -ENOSPC;
	}
	return 0;
}

int boot_load_initrd(struct guest_mem *gm, const struct boot_config *cfg, uint64_t min_start,
		     uint64_t max_end, struct boot_result *out)
{
	uint64_t top = boot_low_ram_end(gm), start;
	uint8_t *data = NULL;
	size_t len = 0;
	int ret;

	out->initrd_start = 0;
	out->initrd_size = 0;
	if (!cfg->initrd_path)
		return 0;
	ret = boot_read_file(cfg->initrd_path, "initrd", gm->ram_size, &data, &len);
	if (ret)
		return ret;
	if (len == 0) {
		err_set("initrd '%s' is empty", cfg->initrd_path);
		free(data);
		return -EINVAL;
	}
	if (max_end < top)
		top = max_end;
	top &= ~0xfffull;
	if (len > top || (start = (top - len) & ~0xfffull) < min_start) {
		err_set("initrd does not fit: %zu bytes between the kernel end 0x%llx and 0x%llx; "
			"give the VM more memory",
			len, (unsigned long long)min_start, (unsigned long long)top);
		free(data);
		return -ENOSPC;
	}
	ret = guest_mem_write(gm, start, data, len);
	free(data);
	if (ret) {
		err_set("initrd does not fit in guest RAM at 0x%llx", (unsigned long long)start);
		return -ENOSPC;
	}
	out->initrd_start = start;
	out->initrd_size = len;
	return 0;
}

int boot_write_gdt(struct guest_mem *gm)
{
	/* null, 32-bit flat code, 64-bit code, flat data (4 GiB, DPL 0). */
	static const uint64_t gdt[BOOT_GDT_ENTRIES] = {
		0,
		0x00cf9b000000ffffull,
		0x00af9b000000ffffull,
		0x00cf93000000ffffull,
	};

	if (guest_mem_write(gm, LAYOUT_GDT_GPA, gdt, sizeof(gdt))) {
		err_set("guest RAM too small for the boot GDT");
		return -ENOSPC;
	}
	return 0;
}
