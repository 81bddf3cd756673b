// SPDX-License-Identifier: GPL-2.0
/*
 * C test of librtmirror_ffi.a through include/rtmirror.h, as lvm2 uses it.
 * Prints one PASS or FAIL line per check and "N passed, N failed" last;
 * exits 1 if any check failed. Run by scripts/check-ffi.sh.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "rtmirror.h"

static unsigned passed, failed;

static void check(int ok, const char *what, int line)
{
	if (ok)
		passed++;
	else
		failed++;
	printf("%s %s (line %d)\n", ok ? "PASS" : "FAIL", what, line);
}

#define CHECK(cond, what) check(!!(cond), what, __LINE__)

/* Compares strings, printing both when they differ. */
static void check_str(const char *got, const char *want, const char *what, int line)
{
	int ok = strcmp(got, want) == 0;

	if (!ok)
		printf("     got:  \"%s\"\n     want: \"%s\"\n", got, want);
	check(ok, what, line);
}

#define CHECK_STR(got, want, what) check_str(got, want, what, __LINE__)

static const uint8_t uuid[RTM_LOG_UUID_BYTES] = {
	0x3f, 0x2a, 0x9c, 0x1e, 0x5b, 0x7d, 0x4e, 0x60,
	0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18,
};

static void test_constants(void)
{
	CHECK(RTM_EINVAL == -EINVAL && RTM_EFAULT == -EFAULT && RTM_EPROTO == -EPROTO &&
	      RTM_EOVERFLOW == -EOVERFLOW, "error codes are negative errno values");
	CHECK(RTM_MAX_LEGS == 4 && RTM_MIN_LEGS == 2 && RTM_MAX_LOGS == 2,
	      "leg and log limits");
	CHECK(RTM_DEFAULT_REGION_SIZE == 8192 && RTM_MIN_REGION_SIZE == 8 &&
	      RTM_MAX_REGION_SIZE == 2097152, "region size limits");
	CHECK(RTM_MAX_REGIONS == UINT64_C(4294967296), "RTM_MAX_REGIONS is 2^32");
	CHECK_STR(RTM_TARGET_NAME, "rtmirror", "target name");
}

static void test_table_full(void)
{
	struct rtm_table_params p = { 0 };
	char buf[512], err[RTM_ERRMSG_SIZE];
	size_t n = 0;
	int r;

	p.nr_legs = 2;
	p.legs[0] = "8:16";
	p.legs[1] = "8:32";
	p.nr_logs = 2;
	p.logs[0] = "8:48";
	p.logs[1] = "8:64";
	r = rtm_table_format(&p, buf, sizeof(buf), &n, err, sizeof(err));
	CHECK(r == RTM_OK, "table: two legs, two logs, no options");
	CHECK_STR(buf, "2 8:16 8:32 2 8:48 8:64 0", "table: no options text");

	p.region_size = 1024;
	p.io_timeout_ms = 15000;
	p.primary = 1;
	p.resync_kbps = 2048;
	memcpy(p.log_uuid, uuid, sizeof(uuid));
	p.flags = RTM_TABLE_PRIMARY | RTM_TABLE_NOSYNC | RTM_TABLE_LOG_UUID | RTM_TABLE_ALLOW_MISSING;
	r = rtm_table_format(&p, buf, sizeof(buf), &n, err, sizeof(err));
	CHECK(r == RTM_OK, "table: every option");
	CHECK_STR(buf, "2 8:16 8:32 2 8:48 8:64 12 region_size 1024 io_timeout_ms 15000 "
		  "primary 1 resync_kbps 2048 nosync log_uuid 3f2a9c1e5b7d4e60a1b2c3d4e5f60718 "
		  "allow_missing", "table: every option, canonical order");
	CHECK(n == strlen(buf), "table: *written is the length");
	CHECK_STR(err, "", "table: error buffer empty on success");
	CHECK(rtm_table_validate(buf, err, sizeof(err)) == RTM_OK, "table: output validates");

	/* The default region size is left out, as the kernel prints it. */
	p.region_size = RTM_DEFAULT_REGION_SIZE;
	p.io_timeout_ms = 0;
	p.resync_kbps = 0;
	p.flags = RTM_TABLE_NOSYNC;
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, NULL, 0);
	CHECK(r == RTM_OK, "table: defaults, no optional outputs");
	CHECK_STR(buf, "2 8:16 8:32 2 8:48 8:64 1 nosync", "table: defaults left out");
}

static void test_table_absent(void)
{
	struct rtm_table_params p = { 0 };
	char buf[128], err[RTM_ERRMSG_SIZE];
	int r;

	p.nr_legs = 2;
	p.legs[0] = NULL;
	p.legs[1] = "8:32";
	p.nr_logs = 2;
	p.logs[0] = "8:48";
	p.logs[1] = NULL;
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_OK, "table: absent leg and absent log copy");
	CHECK_STR(buf, "2 - 8:32 2 8:48 - 0", "table: absent devices are '-'");

	p.flags = RTM_TABLE_PRIMARY;
	p.primary = 0;
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "table: primary on an absent leg is refused");
	CHECK_STR(err, "primary leg 0 is absent ('-')", "table: absent primary reason");
	CHECK_STR(buf, "", "table: buffer holds \"\" after an error");
}

static void test_table_errors(void)
{
	struct rtm_table_params p = { 0 };
	char buf[128], err[RTM_ERRMSG_SIZE];
	size_t n = 99;
	int r;

	p.nr_legs = 2;
	p.legs[0] = "8:16";
	p.legs[1] = "8:32";
	p.region_size = 1000;
	r = rtm_table_format(&p, buf, sizeof(buf), &n, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "bad table: region_size 1000 is refused");
	CHECK_STR(err, "region_size 1000 is not a power of two", "bad table: reason text");
	CHECK(n == 0, "bad table: *written is 0");

	p.region_size = 0;
	p.nr_logs = 1;
	p.logs[0] = "8:16";
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "bad table: a leg used as log is refused");
	CHECK_STR(err, "device '8:16' given more than once", "bad table: duplicate reason");

	p.nr_logs = 0;
	p.nr_legs = 5;
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK_STR(err, "leg count '5' out of range: expected 2 to 4", "bad table: leg count reason");

	p.nr_legs = 2;
	p.legs[1] = "my disk";
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "bad table: device with a space is refused");

	p.legs[1] = "8:32";
	p.flags = 1u << 31;
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "bad table: unknown flag is refused");

	r = rtm_table_format(NULL, buf, sizeof(buf), NULL, err, sizeof(err));
	CHECK(r == RTM_EFAULT, "table: NULL params give RTM_EFAULT");

	r = rtm_table_validate("2 8:16 8:32 0 1 frobnicate", err, sizeof(err));
	CHECK(r == RTM_EINVAL, "validate: unknown option is refused");
	CHECK_STR(err, "unknown option 'frobnicate'", "validate: reason text");
	r = rtm_table_validate("2 - 8:32 2 8:48 - 2 region_size 1024\n", err, sizeof(err));
	CHECK(r == RTM_OK, "validate: a valid line");
	CHECK(rtm_table_validate(NULL, NULL, 0) == RTM_EFAULT, "validate: NULL gives RTM_EFAULT");

	/* Error messages are cut to fit and stay NUL-terminated. */
	p.region_size = 1000;
	p.flags = 0;
	memset(err, 'x', sizeof(err));
	r = rtm_table_format(&p, buf, sizeof(buf), NULL, err, 12);
	CHECK(r == RTM_EINVAL, "bad table: small error buffer");
	CHECK_STR(err, "region_size", "bad table: reason cut to 11 bytes and a NUL");
}

static void test_table_buffers(void)
{
	struct rtm_table_params p = { 0 };
	const char *want = "2 8:16 8:32 1 8:48 0";
	char buf[64], err[RTM_ERRMSG_SIZE];
	size_t n;
	int r;

	p.nr_legs = 2;
	p.legs[0] = "8:16";
	p.legs[1] = "8:32";
	p.nr_logs = 1;
	p.logs[0] = "8:48";
	r = rtm_table_format(&p, NULL, 0, NULL, NULL, 0);
	CHECK(r == (int)strlen(want) + 1, "buffers: NULL/0 returns the size needed");
	r = rtm_table_format(&p, buf, strlen(want), NULL, err, sizeof(err));
	CHECK(r == (int)strlen(want) + 1, "buffers: one byte short returns the size needed");
	CHECK_STR(buf, "", "buffers: short buffer holds \"\"");
	r = rtm_table_format(&p, buf, strlen(want) + 1, &n, err, sizeof(err));
	CHECK(r == RTM_OK && n == strlen(want), "buffers: exact size fits");
	CHECK_STR(buf, want, "buffers: exact size text");
	r = rtm_table_format(&p, NULL, 10, NULL, err, sizeof(err));
	CHECK(r == RTM_EFAULT, "buffers: NULL with a length gives RTM_EFAULT");
}

static void test_status(void)
{
	struct rtm_status s;
	char err[RTM_ERRMSG_SIZE];
	int r;

	r = rtm_status_parse("2 AA 1024/1024 2 AA healthy idle\n", &s, err, sizeof(err));
	CHECK(r == RTM_OK, "status: healthy line parses");
	CHECK(s.nr_legs == 2 && s.legs[0] == RTM_LEG_STATE_IN_SYNC &&
	      s.legs[1] == RTM_LEG_STATE_IN_SYNC && s.legs[2] == RTM_LEG_STATE_NONE,
	      "status: healthy leg states");
	CHECK_STR(s.leg_letters, "AA", "status: healthy leg letters");
	CHECK(s.nr_logs == 2 && s.logs[0] == RTM_LOG_STATE_ALIVE && s.logs[1] == RTM_LOG_STATE_ALIVE,
	      "status: healthy log states");
	CHECK(s.in_sync_regions == 1024 && s.total_regions == 1024, "status: healthy regions");
	CHECK(s.health == RTM_HEALTH_HEALTHY && s.sync_action == RTM_SYNC_ACTION_IDLE,
	      "status: healthy, idle");

	r = rtm_status_parse("2 IA 120/128 2 FA degraded resync", &s, err, sizeof(err));
	CHECK(r == RTM_OK, "status: degraded line parses");
	CHECK(s.legs[0] == RTM_LEG_STATE_INACTIVE && s.legs[1] == RTM_LEG_STATE_IN_SYNC,
	      "status: degraded leg states");
	CHECK_STR(s.leg_letters, "IA", "status: degraded leg letters");
	CHECK(s.logs[0] == RTM_LOG_STATE_FAILED && s.logs[1] == RTM_LOG_STATE_ALIVE,
	      "status: failed log copy");
	CHECK_STR(s.log_letters, "FA", "status: degraded log letters");
	CHECK(s.in_sync_regions == 120 && s.total_regions == 128, "status: degraded regions");
	CHECK(s.health == RTM_HEALTH_DEGRADED && s.sync_action == RTM_SYNC_ACTION_RESYNC,
	      "status: degraded, resync");

	r = rtm_status_parse("2 AM 0/1024 0 - failed idle", &s, err, sizeof(err));
	CHECK(r == RTM_OK && s.legs[1] == RTM_LEG_STATE_MISSING && s.nr_logs == 0 &&
	      s.log_letters[0] == '\0' && s.health == RTM_HEALTH_FAILED,
	      "status: missing leg, no log, failed");

	r = rtm_status_parse("2 AX 1/1 0 - healthy idle", &s, err, sizeof(err));
	CHECK(r == RTM_EINVAL, "status: bad letter is refused");
	CHECK_STR(err, "invalid leg state letter 'X'", "status: bad letter reason");
	CHECK(s.nr_legs == 0 && s.health == RTM_HEALTH_UNKNOWN, "status: zeroed after an error");
	CHECK(rtm_status_parse(NULL, &s, NULL, 0) == RTM_EFAULT, "status: NULL line");
	CHECK(rtm_status_parse("2 AA 1/1 0 - healthy idle", NULL, NULL, 0) == RTM_EFAULT,
	      "status: NULL output");
}

/* Formats a message for a two-leg mirror; returns the code. */
static int msg(uint32_t verb, uint64_t arg, char *buf, size_t len, char *err)
{
	return rtm_message_format(verb, arg, 2, buf, len, NULL, err, RTM_ERRMSG_SIZE);
}

static void test_messages(void)
{
	char buf[64], err[RTM_ERRMSG_SIZE];
	size_t n;

	CHECK(msg(RTM_MSG_VERB_FAIL, 1, buf, sizeof(buf), err) == RTM_OK, "message: fail 1");
	CHECK_STR(buf, "fail 1", "message: fail 1 text");
	msg(RTM_MSG_VERB_REJOIN, 1, buf, sizeof(buf), err);
	CHECK_STR(buf, "rejoin 1", "message: rejoin 1");
	msg(RTM_MSG_VERB_SPLIT, 0, buf, sizeof(buf), err);
	CHECK_STR(buf, "split 0", "message: split 0");
	msg(RTM_MSG_VERB_RESYNC, 0, buf, sizeof(buf), err);
	CHECK_STR(buf, "resync", "message: resync");
	msg(RTM_MSG_VERB_IO_TIMEOUT_MS, 5000, buf, sizeof(buf), err);
	CHECK_STR(buf, "io_timeout_ms 5000", "message: io_timeout_ms 5000");
	msg(RTM_MSG_VERB_PRIMARY, 1, buf, sizeof(buf), err);
	CHECK_STR(buf, "primary 1", "message: primary 1");
	msg(RTM_MSG_VERB_RESYNC_KBPS, 0, buf, sizeof(buf), err);
	CHECK_STR(buf, "resync_kbps 0", "message: resync_kbps 0");
	msg(RTM_MSG_VERB_REJOIN_LOG, 0, buf, sizeof(buf), err);
	CHECK_STR(buf, "rejoin_log 0", "message: rejoin_log 0");
	msg(RTM_MSG_VERB_TRUST, 1, buf, sizeof(buf), err);
	CHECK_STR(buf, "trust 1", "message: trust 1");

	CHECK(msg(RTM_MSG_VERB_FAIL, 2, buf, sizeof(buf), err) == RTM_EINVAL,
	      "message: leg 2 of 2 is refused");
	CHECK_STR(err, "leg 2 out of range: mirror has 2 legs", "message: out of range reason");
	CHECK(msg(RTM_MSG_VERB_RESYNC, 1, buf, sizeof(buf), err) == RTM_EINVAL,
	      "message: resync takes no argument");
	CHECK(msg(RTM_MSG_VERB_IO_TIMEOUT_MS, 3600001, buf, sizeof(buf), err) == RTM_EINVAL,
	      "message: timeout too large");
	CHECK(msg(0, 0, buf, sizeof(buf), err) == RTM_EINVAL, "message: verb 0 is unknown");
	CHECK(rtm_message_format(RTM_MSG_VERB_FAIL, 0, 1, buf, sizeof(buf), NULL, NULL, 0) ==
	      RTM_EINVAL, "message: one-leg mirror is refused");
	CHECK(msg(RTM_MSG_VERB_FAIL, 1, NULL, 0, err) == 7, "message: size query");
	CHECK(rtm_message_format(RTM_MSG_VERB_TRUST, 3, 4, buf, sizeof(buf), &n, NULL, 0) ==
	      RTM_OK && n == 7, "message: trust 3 of 4 legs, *written");
}

static void test_sizes(void)
{
	uint64_t n = 1;

	CHECK(rtm_nr_regions(2097152, 0, &n) == RTM_OK && n == 256,
	      "sizes: 1 GiB in default regions");
	CHECK(rtm_nr_regions(2097153, 8192, &n) == RTM_OK && n == 257,
	      "sizes: a partial last region counts");
	CHECK(rtm_nr_regions(2097152, 1000, &n) == RTM_EINVAL && n == 0,
	      "sizes: region size 1000 is refused");
	CHECK(rtm_nr_regions(1, 8, NULL) == RTM_EFAULT, "sizes: NULL output");
	CHECK(rtm_log_bytes_needed(256) == 3 * 4096, "sizes: log for 256 regions is 3 blocks");
	CHECK(rtm_log_bytes_needed(32257) == 4 * 4096, "sizes: second bitmap block");
	CHECK(rtm_max_regions_for(3 * 4096) == 32256, "sizes: regions a 3-block log holds");
	CHECK(rtm_max_regions_for(4096) == 0, "sizes: one block holds no region");
}

int main(void)
{
	test_constants();
	test_table_full();
	test_table_absent();
	test_table_errors();
	test_table_buffers();
	test_status();
	test_messages();
	test_sizes();
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
