// SPDX-License-Identifier: GPL-2.0
/*
 * blkzeroout <device> <offset> <length>: BLKZEROOUT on a byte range, as util-linux's
 * `blkdiscard -z` does. Busybox's blkdiscard has no -z and util-linux is not in the s390x
 * guest, so the scenarios use this (built statically for both guests).
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	uint64_t range[2];
	char *end;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: blkzeroout <device> <offset> <length>\n");
		return 2;
	}
	range[0] = strtoull(argv[2], &end, 0);
	if (*end)
		goto bad;
	range[1] = strtoull(argv[3], &end, 0);
	if (*end)
		goto bad;
	fd = open(argv[1], O_WRONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (ioctl(fd, BLKZEROOUT, range)) {
		perror("BLKZEROOUT");
		return 1;
	}
	return close(fd) ? 1 : 0;
bad:
	fprintf(stderr, "blkzeroout: bad number\n");
	return 2;
}
