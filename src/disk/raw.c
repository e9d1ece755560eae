// SPDX-License-Identifier: GPL-2.0-only
/* Raw driver: identity mapping onto one file or block device. */
#include "disk/raw.h"

#include "lib/err.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* preadv/pwritev take a private copy of this many iovecs at a time. */
#define RAW_IOV_CHUNK 64
#define RAW_ZERO_BUF (64 * 1024)

struct raw_dev {
	struct blockdev bd;
	int fd;
	bool is_blk;
	bool direct;
};

static struct raw_dev *to_raw(struct blockdev *bd)
{
	return (struct raw_dev *)bd;
}

/* Zeros what is left to read. */
static void raw_iov_zero(struct iovec *iov, int cnt)
{
	for (int i = 0; i < cnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
}

/*
 * Moves past done bytes; returns the new first index. Entries before it are
 * finished, iov[idx] is trimmed in place (iov is our private copy).
 */
static int raw_iov_advance(struct iovec *iov, int cnt, size_t done)
{
	int i = 0;

	while (i < cnt && done >= iov[i].iov_len) {
		done -= iov[i].iov_len;
		i++;
	}
	if (i < cnt && done) {
		iov[i].iov_base = (char *)iov[i].iov_base + done;
		iov[i].iov_len -= done;
	}
	return i;
}

static int raw_rw(struct raw_dev *r, const struct iovec *iov, int iovcnt, uint64_t offset,
		  bool write, int rwflags)
{
	struct iovec local[RAW_IOV_CHUNK];

	for (int base = 0; base < iovcnt; base += RAW_IOV_CHUNK) {
		int cnt = MIN(iovcnt - base, RAW_IOV_CHUNK);
		int i = 0;

		memcpy(local, iov + base, sizeof(local[0]) * (size_t)cnt);
		while (i < cnt) {
			ssize_t n;

			if (write)
				n = pwritev2(r->fd, local + i, cnt - i, (off_t)offset, rwflags);
			else
				n = preadv(r->fd, local + i, cnt - i, (off_t)offset);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			if (n == 0) {
				if (write)
					return -EIO;
				/* End of file: only possible if the file shrank under us. */
				raw_iov_zero(local + i, cnt - i);
				for (int k = base + cnt; k < iovcnt; k++)
					memset(iov[k].iov_base, 0, iov[k].iov_len);
				return 0;
			}
			offset += (uint64_t)n;
			i += raw_iov_advance(local + i, cnt - i, (size_t)n);
		}
	}
	return 0;
}

static int raw_readv(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset)
{
	return raw_rw(to_raw(bd), iov, iovcnt, offset, false, 0);
}

static int raw_writev(struct blockdev *bd, const struct iovec *iov, int iovcnt, uint64_t offset,
		      unsigned flags)
{
	return raw_rw(to_raw(bd), iov, iovcnt, offset, true,
		      (flags & BLOCKDEV_WRITE_FUA) ? RWF_DSYNC : 0);
}

static int raw_flush(struct blockdev *bd)
{
	if (fdatasync(to_raw(bd)->fd) < 0)
		return -errno;
	return 0;
}

static int raw_write_zeros(struct raw_dev *r, uint64_t offset, uint64_t len)
{
	/* Aligned so that it also works with O_DIRECT. */
	static _Alignas(4096) const uint8_t zeros[RAW_ZERO_BUF];

	while (len) {
		size_t n = (size_t)MIN(len, (uint64_t)RAW_ZERO_BUF);
		int ret = util_pwrite_full(r->fd, zeros, n, (off_t)offset);

		if (ret < 0)
			return ret;
		offset += n;
		len -= n;
	}
	return 0;
}

static int raw_discard(struct blockdev *bd, uint64_t offset, uint64_t len)
{
	struct raw_dev *r = to_raw(bd);

	if (!len)
		return 0;
	if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)offset,
		      (off_t)len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
		return -errno;
	return raw_write_zeros(r, offset, len);
}

static int raw_map(struct blockdev *bd, uint64_t offset, uint64_t len, bool for_write,
		   struct blockdev_extent *ext)
{
	ext->kind = BLOCKDEV_EXTENT_DATA;
	ext->file_offset = offset;
	ext->len = len;
	return 0;
}

static int raw_block_status(struct blockdev *bd, uint64_t offset, uint64_t len, int *status,
			    uint64_t *run_len)
{
	struct raw_dev *r = to_raw(bd);
	off_t data, hole;

	*status = BLOCKDEV_STATUS_DATA;
	*run_len = len;
	if (r->is_blk || !len)
		return 0;
	data = lseek(r->fd, (off_t)offset, SEEK_DATA);
	if (data < 0) {
		if (errno == ENXIO) {
			/* Only a hole up to the end of the file. */
			*status = BLOCKDEV_STATUS_UNALLOCATED;
			return 0;
		}
		return 0; /* no SEEK_DATA here: call it all data */
	}
	if ((uint64_t)data > offset) {
		*status = BLOCKDEV_STATUS_UNALLOCATED;
		*run_len = MIN(len, (uint64_t)data - offset);
	} else {
		hole = lseek(r->fd, (off_t)offset, SEEK_HOLE);
		if (hole > (off_t)offset)
			*run_len = MIN(len, (uint64_t)hole - offset);
	}
	/* Runs end on sector boundaries; file system blocks are multiples of 512. */
	if (*run_len > 512)
		*run_len = ALIGN_DOWN(*run_len, (uint64_t)512);
	return 0;
}

static int raw_close(struct blockdev *bd)
{
	struct raw_dev *r = to_raw(bd);
	int ret = 0;

	if (close(r->fd) < 0)
		ret = -errno;
	free(r);
	return ret;
}

static const struct blockdev_ops raw_ops = {
	.readv = raw_readv,
	.writev = raw_writev,
	.flush = raw_flush,
	.discard = raw_discard,
	.map = raw_map,
	.block_status = raw_block_status,
	.close = raw_close,
};

static int raw_fd_size(int fd, const char *path, bool *is_blk, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		int e = errno;

		err_set("cannot stat '%s': %s", path, strerror(e));
		return -e;
	}
	*is_blk = S_ISBLK(st.st_mode);
	if (*is_blk) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0) {
			int e = errno;

			err_set("cannot get the size of block device '%s': %s", path, strerror(e));
			return -e;
		}
	} else if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
	} else {
		err_set("'%s' is neither a regular file nor a block device", path);
		return -EINVAL;
	}
	return 0;
}

static int raw_open(const char *path, unsigned flags, struct blockdev **out)
{
	bool ro = flags & DISK_OPEN_RDONLY;
	int oflags = (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct raw_dev *r;
	uint64_t size;
	bool is_blk;
	int fd, ret;

	if (flags & DISK_OPEN_DIRECT)
		oflags |= O_DIRECT;
	fd = open(path, oflags);
	if (fd < 0) {
		int e = errno;

		if (e == EINVAL && (flags & DISK_OPEN_DIRECT))
			err_set("'%s': the file system refuses O_DIRECT; open it without direct I/O",
				path);
		else
			err_set("cannot open '%s': %s", path, strerror(e));
		return -e;
	}
	ret = raw_fd_size(fd, path, &is_blk, &size);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	if (size % 512) {
		err_set("raw image '%s' is %llu bytes, not a multiple of 512; pad it with truncate",
			path, (unsigned long long)size);
		close(fd);
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		close(fd);
		return -ENOMEM;
	}
	r->fd = fd;
	r->is_blk = is_blk;
	r->direct = flags & DISK_OPEN_DIRECT;
	r->bd.ops = &raw_ops;
	r->bd.format = "raw";
	r->bd.size = size;
	r->bd.logical_sector_size = 512;
	/* With O_DIRECT, buffers and offsets must be 4096-aligned on most devices. */
	r->bd.physical_sector_size = 4096;
	if (is_blk) {
		int lss = 0;
		unsigned int pss = 0;

		/* A 4K-native device cannot do 512-byte I/O: report what it has. */
		if (ioctl(fd, BLKSSZGET, &lss) == 0 && (lss == 512 || lss == 4096))
			r->bd.logical_sector_size = (uint32_t)lss;
		if (ioctl(fd, BLKPBSZGET, &pss) == 0 && pss >= r->bd.logical_sector_size &&
		    pss <= 65536 && !(pss & (pss - 1)))
			r->bd.physical_sector_size = pss;
		if (r->bd.physical_sector_size < r->bd.logical_sector_size)
			r->bd.physical_sector_size = r->bd.logical_sector_size;
		if (size % r->bd.logical_sector_size) {
			err_set("block device '%s' size is not a multiple of its sector size",
				path);
			free(r);
			close(fd);
			return -EINVAL;
		}
	}
	r->bd.read_only = ro;
	r->bd.data_fd = fd;
	*out = &r->bd;
	return 0;
}

static bool raw_probe(const uint8_t *head, size_t head_len, const uint8_t *tail, uint64_t file_size)
{
	return true; /* anything is a raw image */
}

static int raw_create(const char *path, const struct disk_create_opts *opts)
{
	int fd, ret = 0;

	if (opts->parent || opts->type == DISK_TYPE_DIFFERENCING) {
		err_set("raw images cannot be differencing; use vhd or vhdx for '%s'", path);
		return -EINVAL;
	}
	if (!opts->size || opts->size % 512 || opts->size > (uint64_t)INT64_MAX) {
		err_set("raw image size %llu is not a positive multiple of 512",
			(unsigned long long)opts->size);
		return -EINVAL;
	}
	if (opts->logical_sector_size && opts->logical_sector_size != 512) {
		err_set("raw images have 512-byte logical sectors");
		return -EINVAL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = -errno;
		if (ret == -EEXIST)
			err_set("'%s' already exists; remove it or choose another name", path);
		else
			err_set("cannot create '%s': %s", path, strerror(-ret));
		return ret;
	}
	if (ftruncate(fd, (off_t)opts->size) < 0) {
		ret = -errno;
		err_set("cannot size '%s': %s", path, strerror(-ret));
	} else if (opts->type == DISK_TYPE_FIXED) {
		int e = posix_fallocate(fd, 0, (off_t)opts->size);

		if (e) {
			ret = -e;
			err_set("cannot allocate %llu bytes for '%s': %s",
				(unsigned long long)opts->size, path, strerror(e));
		}
	}
	if (!ret && fsync(fd) < 0) {
		ret = -errno;
		err_set("cannot sync '%s': %s", path, strerror(-ret));
	}
	close(fd);
	if (ret)
		unlink(path);
	return ret;
}

static int raw_info(struct blockdev *bd, struct disk_info *info)
{
	struct raw_dev *r = to_raw(bd);
	struct stat st;

	info->format = DISK_FORMAT_RAW;
	info->type = DISK_TYPE_FIXED;
	info->virtual_size = bd->size;
	info->block_size = 0;
	info->logical_sector_size = bd->logical_sector_size;
	info->physical_sector_size = bd->physical_sector_size;
	if (fstat(r->fd, &st) == 0) {
		info->file_size = r->is_blk ? bd->size : (uint64_t)st.st_size;
		info->allocated_bytes = r->is_blk ? bd->size : (uint64_t)st.st_blocks * 512;
		/* A sparse raw file behaves like a dynamic disk. */
		if (!r->is_blk && info->allocated_bytes < info->file_size)
			info->type = DISK_TYPE_DYNAMIC;
	}
	return 0;
}

static int raw_check(const char *path, bool repair, struct disk_check_result *res, FILE *report)
{
	uint64_t size;
	bool is_blk;
	int fd, ret;

	memset(res, 0, sizeof(*res));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		err_set("cannot open '%s': %s", path, strerror(-ret));
		return ret;
	}
	ret = raw_fd_size(fd, path, &is_blk, &size);
	close(fd);
	if (ret < 0)
		return ret;
	if (size % 512) {
		res->errors = 1;
		snprintf(res->first_error, sizeof(res->first_error),
			 "size %llu is not a multiple of 512 bytes", (unsigned long long)size);
		if (report)
			fprintf(report, "%s: %s\n", path, res->first_error);
	} else if (report) {
		fprintf(report, "%s: raw image, %llu bytes, no errors\n", path,
			(unsigned long long)size);
	}
	return 0;
}

const struct disk_driver raw_driver = {
	.format = DISK_FORMAT_RAW,
	.name = "raw",
	.probe = raw_probe,
	.open = raw_open,
	.create = raw_create,
	.info = raw_info,
	.check = raw_check,
};
