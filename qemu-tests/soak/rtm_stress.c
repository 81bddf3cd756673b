// SPDX-License-Identifier: GPL-2.0
/*
 * rtm-stress: the soak's guest workload and oracle (docs/soak.md).
 *
 *   rtm-stress run <dev> <journal> <seconds> <epoch> <seed>
 *   rtm-stress verify <dev> <journal> exact|cut
 *
 * The device is cut into 4 KiB blocks, each self-describing: magic, block number, sequence
 * number (epoch << 32 | counter), writer, payload derived from (block, seq), and a check
 * over all of it. Writers own 1 MiB chunks (chunk % writers), so every block has one writer
 * and at most one operation in flight; ranges of up to 64 blocks cross region boundaries.
 * Writers 0 and 2 use O_DIRECT (plain and RWF_DSYNC writes, BLKZEROOUT, BLKDISCARD), writers
 * 1 and 3 buffered writes made durable by fdatasync. A reader checks with O_DIRECT that every
 * read returns a version no older than the last acknowledged one.
 *
 * Journal (a disk the soak never faults, written O_DIRECT|O_DSYNC): per block the last
 * version known durable (written before a completed flush) and the newest zeroing operation
 * issued (recorded BEFORE it is issued). `verify exact` (after a clean end) requires the
 * durable version itself; `verify cut` (after a power cut) accepts any version at least as
 * new, zeros only where a zeroing operation may have landed, and never an older version.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096u
#define CHUNK_BLOCKS 256u
#define WRITERS 4u
#define MAGIC 0x5254535452455353ull /* "RTSTRESS" */
#define JMAGIC 0x52544d4a4f55524eull /* "RTMJOURN" */
#define SLOT 16u /* journal slot: durable (seq << 2 | kind), zeroing seq issued */

enum kind { K_NONE = 0, K_WRITE = 1, K_ZERO = 2, K_DISCARD = 3 };

struct block_hdr {
	uint64_t magic;
	uint64_t block;
	uint64_t seq;
	uint64_t writer;
};

static uint64_t nblocks;
static int dev_direct, dev_buffered, jfd;
static _Atomic uint64_t *acked;  /* seq << 2 | kind, last acknowledged */
static _Atomic uint64_t *issued; /* seq << 2 | kind, last issued */
static _Atomic uint64_t *zeroing; /* seq of the newest zeroing op issued (this boot) */
static uint64_t *jslots;          /* journal image: 2 u64 per block */
static pthread_mutex_t jlock = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static uint32_t epoch;

static _Atomic uint64_t n_write, n_zero, n_discard, n_dsync, n_sync, n_read, n_werr, n_rerr,
	n_bad, n_discard_unsupported;

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t rnd(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return mix(*s);
}

static uint64_t check_of(const unsigned char *b)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint64_t *w = (const uint64_t *)b;

	for (unsigned int i = 0; i < BLK / 8 - 1; i++)
		h = mix(h ^ w[i]);
	return h;
}

static void fill(unsigned char *b, uint64_t block, uint64_t seq, uint64_t writer)
{
	struct block_hdr *h = (struct block_hdr *)b;
	uint64_t *w = (uint64_t *)b;
	uint64_t s = mix(block * 31 + seq);

	h->magic = MAGIC;
	h->block = block;
	h->seq = seq;
	h->writer = writer;
	for (unsigned int i = sizeof(*h) / 8; i < BLK / 8 - 1; i++)
		w[i] = rnd(&s);
	w[BLK / 8 - 1] = check_of(b);
}

/* 0: zeros; 1: valid version in *seq; -1: neither (corrupt or another block's data). */
static int decode(const unsigned char *b, uint64_t block, uint64_t *seq)
{
	const struct block_hdr *h = (const struct block_hdr *)b;
	const uint64_t *w = (const uint64_t *)b;
	unsigned int i;

	for (i = 0; i < BLK / 8 && !w[i]; i++)
		;
	if (i == BLK / 8)
		return 0;
	if (h->magic != MAGIC || h->block != block || w[BLK / 8 - 1] != check_of(b))
		return -1;
	*seq = h->seq;
	return 1;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *xalloc(size_t n)
{
	void *p;

	if (posix_memalign(&p, BLK, n ? n : BLK)) {
		fprintf(stderr, "rtm-stress: out of memory\n");
		exit(2);
	}
	memset(p, 0, n);
	return p;
}

/* Journal pages holding slots [first, first + n) are written back durably. */
static int journal_write(uint64_t first, uint64_t n)
{
	uint64_t from = (first * SLOT) / BLK * BLK, to = ((first + n) * SLOT + BLK - 1) / BLK * BLK;
	const unsigned char *img = (const unsigned char *)jslots;

	if (pwrite(jfd, img + from, to - from, BLK + from) != (ssize_t)(to - from)) {
		perror("rtm-stress: journal write");
		return -1;
	}
	return 0;
}

static int journal_load(void)
{
	uint64_t hdr[BLK / 8] __attribute__((aligned(BLK)));
	size_t len = nblocks * SLOT;

	len = (len + BLK - 1) / BLK * BLK;
	jslots = xalloc(len);
	if (pread(jfd, hdr, BLK, 0) != BLK) {
		perror("rtm-stress: journal header");
		return -1;
	}
	if (hdr[0] != JMAGIC || hdr[1] != nblocks) {
		/* A new journal: nothing written yet. */
		memset(hdr, 0, sizeof(hdr));
		hdr[0] = JMAGIC;
		hdr[1] = nblocks;
		if (pwrite(jfd, jslots, len, BLK) != (ssize_t)len ||
		    pwrite(jfd, hdr, BLK, 0) != BLK) {
			perror("rtm-stress: journal init");
			return -1;
		}
		return 0;
	}
	if (pread(jfd, jslots, len, BLK) != (ssize_t)len) {
		perror("rtm-stress: journal read");
		return -1;
	}
	return 0;
}

/* The oracle for one block read through the mirror. */
static const char *judge(const unsigned char *b, uint64_t blk, uint64_t lo, uint64_t hi,
			 int zeros_ok, int older_ok, uint64_t *got)
{
	int r = decode(b, blk, got);

	if (r < 0)
		return "corrupt (not a version of this block)";
	if (r == 0)
		return zeros_ok ? NULL : "zeros where data was acknowledged";
	if (*got < lo && !older_ok)
		return "STALE: older than the acknowledged version";
	if (*got > hi)
		return "a version never written";
	return NULL;
}

struct writer {
	unsigned int id;
	uint64_t seed;
	uint64_t counter;
	uint64_t *pending; /* blocks acked since the last flush */
	size_t npending;
};

static void note_pending(struct writer *w, uint64_t first, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		w->pending[w->npending++] = first + i;
}

/* fdatasync, then journal what was acknowledged before it as durable. */
static void make_durable(struct writer *w, int fd)
{
	uint64_t lo = UINT64_MAX, hi = 0;

	if (fdatasync(fd)) {
		/* Not durable: the journal keeps the older versions (the blocks may be newer). */
		atomic_fetch_add(&n_werr, 1);
		w->npending = 0;
		return;
	}
	atomic_fetch_add(&n_sync, 1);
	pthread_mutex_lock(&jlock);
	for (size_t i = 0; i < w->npending; i++) {
		uint64_t b = w->pending[i];

		jslots[2 * b] = atomic_load(&acked[b]);
		lo = b < lo ? b : lo;
		hi = b > hi ? b : hi;
	}
	if (w->npending)
		journal_write(lo, hi - lo + 1);
	pthread_mutex_unlock(&jlock);
	w->npending = 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int direct = !(w->id & 1), fd = direct ? dev_direct : dev_buffered;
	uint64_t nchunks = nblocks / CHUNK_BLOCKS, since_sync = 0;
	unsigned char *buf = xalloc(64 * BLK);

	w->pending = calloc(64 * 64 + 64, sizeof(uint64_t));
	if (!w->pending || nchunks < WRITERS)
		return NULL;
	while (!stop) {
		uint64_t c = (rnd(&w->seed) % (nchunks / WRITERS)) * WRITERS + w->id;
		unsigned int n = 1 + rnd(&w->seed) % (rnd(&w->seed) % 4 ? 8 : 64);
		uint64_t first = c * CHUNK_BLOCKS + rnd(&w->seed) % (CHUNK_BLOCKS - n + 1);
		unsigned int op = rnd(&w->seed) % 100;
		uint64_t seq = ((uint64_t)epoch << 32) | ++w->counter;
		int kind = !direct || op < 76 ? K_WRITE : op < 88 ? K_ZERO : K_DISCARD;
		uint64_t range[2] = { first * BLK, (uint64_t)n * BLK };
		int ok;

		if (kind != K_WRITE) {
			/* Intent first: after a power cut, zeros here may be this op's. */
			pthread_mutex_lock(&jlock);
			for (unsigned int i = 0; i < n; i++)
				jslots[2 * (first + i) + 1] = seq;
			ok = !journal_write(first, n);
			pthread_mutex_unlock(&jlock);
			if (!ok)
				break;
			for (unsigned int i = 0; i < n; i++)
				atomic_store(&zeroing[first + i], seq);
		}
		for (unsigned int i = 0; i < n; i++)
			atomic_store(&issued[first + i], seq << 2 | kind);
		if (kind == K_WRITE) {
			struct iovec v = { buf, (size_t)n * BLK };
			int flags = direct && op % 5 == 0 ? RWF_DSYNC : 0;

			for (unsigned int i = 0; i < n; i++)
				fill(buf + (size_t)i * BLK, first + i, seq, w->id);
			ok = pwritev2(fd, &v, 1, first * BLK, flags) == (ssize_t)(n * BLK);
			atomic_fetch_add(flags ? &n_dsync : &n_write, 1);
		} else if (kind == K_ZERO) {
			ok = !ioctl(fd, BLKZEROOUT, range);
			atomic_fetch_add(&n_zero, 1);
		} else {
			ok = !ioctl(fd, BLKDISCARD, range);
			if (!ok && errno == EOPNOTSUPP) {
				atomic_fetch_add(&n_discard_unsupported, 1);
				for (unsigned int i = 0; i < n; i++)
					atomic_store(&issued[first + i], atomic_load(&acked[first + i]));
				continue;
			}
			atomic_fetch_add(&n_discard, 1);
		}
		if (!ok) {
			/* Not acknowledged: the blocks may hold either version. */
			atomic_fetch_add(&n_werr, 1);
			continue;
		}
		/* Buffered writes count as acknowledged only after their fdatasync. */
		if (direct) {
			for (unsigned int i = 0; i < n; i++)
				atomic_store(&acked[first + i], seq << 2 | kind);
		}
		note_pending(w, first, n);
		if (++since_sync >= (direct ? 16 : 4) || w->npending > 64 * 63) {
			if (!direct) {
				/* Data first, then the acknowledgement. */
				if (fdatasync(fd)) {
					atomic_fetch_add(&n_werr, 1);
					w->npending = 0;
					since_sync = 0;
					continue;
				}
				for (size_t i = 0; i < w->npending; i++) {
					uint64_t b = w->pending[i];

					atomic_store(&acked[b], atomic_load(&issued[b]));
				}
			}
			make_durable(w, fd);
			since_sync = 0;
		}
	}
	if (!direct && !fdatasync(fd)) {
		for (size_t i = 0; i < w->npending; i++)
			atomic_store(&acked[w->pending[i]], atomic_load(&issued[w->pending[i]]));
	}
	make_durable(w, fd);
	free(buf);
	return NULL;
}

static void *reader_main(void *arg)
{
	uint64_t s = *(uint64_t *)arg;
	unsigned char *b = xalloc(BLK);

	while (!stop) {
		uint64_t blk = rnd(&s) % nblocks, got = 0;
		uint64_t a = atomic_load(&acked[blk]), z0 = atomic_load(&zeroing[blk]);
		const char *why;

		if (pread(dev_direct, b, BLK, blk * BLK) != BLK) {
			atomic_fetch_add(&n_rerr, 1);
			continue;
		}
		uint64_t i = atomic_load(&issued[blk]), z1 = atomic_load(&zeroing[blk]);
		int akind = a & 3;
		int zeros_ok = akind != K_WRITE || z1 > z0 || (z1 && z1 >= (a >> 2));
		why = judge(b, blk, a >> 2, i >> 2, zeros_ok, akind == K_DISCARD, &got);
		atomic_fetch_add(&n_read, 1);
		if (why) {
			atomic_fetch_add(&n_bad, 1);
			printf("rtm-stress: BAD read block %llu: %s (acked %llu:%d, issued %llu, "
			       "read %llu)\n", (unsigned long long)blk, why,
			       (unsigned long long)(a >> 2), akind, (unsigned long long)(i >> 2),
			       (unsigned long long)got);
			fflush(stdout);
		}
	}
	free(b);
	return NULL;
}

static int open_dev(const char *path)
{
	uint64_t size;

	dev_direct = open(path, O_RDWR | O_DIRECT);
	dev_buffered = open(path, O_RDWR);
	if (dev_direct < 0 || dev_buffered < 0 || ioctl(dev_direct, BLKGETSIZE64, &size)) {
		perror(path);
		return -1;
	}
	nblocks = size / BLK / CHUNK_BLOCKS * CHUNK_BLOCKS;
	return 0;
}

static int open_journal(const char *path)
{
	uint64_t size;

	jfd = open(path, O_RDWR | O_DIRECT | O_DSYNC);
	if (jfd < 0 || ioctl(jfd, BLKGETSIZE64, &size)) {
		perror(path);
		return -1;
	}
	if (size < BLK + nblocks * SLOT) {
		fprintf(stderr, "rtm-stress: journal too small for %llu blocks\n",
			(unsigned long long)nblocks);
		return -1;
	}
	return journal_load();
}

static int cmd_verify(int exact)
{
	unsigned char *b = xalloc(BLK);
	uint64_t bad = 0, stale = 0, data = 0, zeros = 0;

	for (uint64_t blk = 0; blk < nblocks; blk++) {
		uint64_t d = jslots[2 * blk], z = jslots[2 * blk + 1], got = 0;
		int kind = d & 3;
		const char *why;

		if (pread(dev_direct, b, BLK, blk * BLK) != BLK) {
			printf("rtm-stress: BAD verify block %llu: read error %d\n",
			       (unsigned long long)blk, errno);
			bad++;
			continue;
		}
		/*
		 * Exact: what the journal says, nothing newer (a clean end journals every
		 * acknowledged operation after its flush). Cut: at least that new; zeros where
		 * a zeroing op was issued after it.
		 */
		why = judge(b, blk, d >> 2, exact ? d >> 2 : UINT64_MAX,
			    kind != K_WRITE || (!exact && z > (d >> 2)), kind == K_DISCARD, &got);
		if (!why && exact && kind == K_ZERO && decode(b, blk, &got) != 0)
			why = "data where zeros were written";
		if (why) {
			bad++;
			stale += !!strstr(why, "STALE");
			if (bad <= 20)
				printf("rtm-stress: BAD verify block %llu: %s (journal %llu:%d zeroing "
				       "%llu, read %llu)\n", (unsigned long long)blk, why,
				       (unsigned long long)(d >> 2), kind, (unsigned long long)z,
				       (unsigned long long)got);
		}
		if (decode(b, blk, &got) == 1)
			data++;
		else
			zeros++;
	}
	printf("rtm-stress: verify %s: %llu blocks, %llu with data, %llu zero, %llu bad, "
	       "%llu stale\n", exact ? "exact" : "cut", (unsigned long long)nblocks,
	       (unsigned long long)data, (unsigned long long)zeros, (unsigned long long)bad,
	       (unsigned long long)stale);
	free(b);
	return bad ? 1 : 0;
}

static int cmd_run(unsigned int seconds, uint64_t seed)
{
	pthread_t w[WRITERS], r;
	struct writer ws[WRITERS];
	uint64_t rseed = seed ^ 0x5a5a5a5aull, end = now_ms() + seconds * 1000ull;

	acked = calloc(nblocks, sizeof(*acked));
	issued = calloc(nblocks, sizeof(*issued));
	zeroing = calloc(nblocks, sizeof(*zeroing));
	if (!acked || !issued || !zeroing)
		return 2;
	/* The device holds the journal's durable version (verified before), or after a power
	 * cut possibly a newer one: written, never acknowledged, kept by a cache (`verify cut`
	 * accepts it). From now on reads must return that one or a later one: flushed, it is
	 * taken as acknowledged. */
	unsigned char *b0 = xalloc(BLK);
	if (fsync(dev_direct) != 0) {
		perror("rtm-stress: flush before the run");
		return 2;
	}
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t got = 0;
		int r;

		acked[b] = jslots[2 * b];
		issued[b] = jslots[2 * b];
		zeroing[b] = jslots[2 * b + 1];
		if (pread(dev_direct, b0, BLK, b * BLK) != BLK) {
			perror("rtm-stress: read before the run");
			return 2;
		}
		r = decode(b0, b, &got);
		if (r > 0 && got > (acked[b] >> 2)) {
			acked[b] = got << 2 | K_WRITE;
			issued[b] = acked[b];
			jslots[2 * b] = acked[b];
		} else if (r == 0 && (acked[b] & 3) == K_WRITE && zeroing[b] > (acked[b] >> 2)) {
			/* Likewise zeros of a zeroing op issued after the last acknowledged write
			 * and cut off (or not journaled) before the power cut: they are what the
			 * block holds now. */
			acked[b] = zeroing[b] << 2 | K_ZERO;
			issued[b] = acked[b];
			jslots[2 * b] = acked[b];
		}
	}
	free(b0);
	/* Journaled too: a block never written again this boot still holds it at the next
	 * `verify exact`. */
	if (journal_write(0, nblocks) != 0)
		return 2;
	for (unsigned int i = 0; i < WRITERS; i++) {
		ws[i] = (struct writer){ .id = i, .seed = mix(seed + i) };
		pthread_create(&w[i], NULL, writer_main, &ws[i]);
	}
	pthread_create(&r, NULL, reader_main, &rseed);
	while (now_ms() < end) {
		sleep(5);
		printf("rtm-stress: progress writes=%llu dsync=%llu zero=%llu discard=%llu "
		       "syncs=%llu reads=%llu write_errors=%llu read_errors=%llu bad=%llu\n",
		       (unsigned long long)n_write, (unsigned long long)n_dsync,
		       (unsigned long long)n_zero, (unsigned long long)n_discard,
		       (unsigned long long)n_sync, (unsigned long long)n_read,
		       (unsigned long long)n_werr, (unsigned long long)n_rerr,
		       (unsigned long long)n_bad);
		fflush(stdout);
	}
	stop = 1;
	for (unsigned int i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(r, NULL);
	printf("rtm-stress: done writes=%llu dsync=%llu zero=%llu discard=%llu "
	       "discard_unsupported=%llu syncs=%llu reads=%llu write_errors=%llu "
	       "read_errors=%llu bad=%llu\n",
	       (unsigned long long)n_write, (unsigned long long)n_dsync,
	       (unsigned long long)n_zero, (unsigned long long)n_discard,
	       (unsigned long long)n_discard_unsupported, (unsigned long long)n_sync,
	       (unsigned long long)n_read, (unsigned long long)n_werr,
	       (unsigned long long)n_rerr, (unsigned long long)n_bad);
	return n_bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "verify")) {
		if (open_dev(argv[2]) || open_journal(argv[3]))
			return 2;
		return cmd_verify(!strcmp(argv[4], "exact"));
	}
	if (argc >= 7 && !strcmp(argv[1], "run")) {
		if (open_dev(argv[2]) || open_journal(argv[3]))
			return 2;
		epoch = strtoul(argv[5], NULL, 0);
		setvbuf(stdout, NULL, _IOLBF, 0);
		return cmd_run(strtoul(argv[4], NULL, 0), strtoull(argv[6], NULL, 0));
	}
	fprintf(stderr, "usage: rtm-stress run <dev> <journal> <seconds> <epoch> <seed>\n"
			"       rtm-stress verify <dev> <journal> exact|cut\n");
	return 2;
}
