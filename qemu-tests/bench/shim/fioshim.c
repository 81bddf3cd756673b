/*
 * What fio needs from the kernel and the benchmark guest's kernel lacks (it is configured from
 * tinyconfig: no CONFIG_SYSVIPC, no CONFIG_TIMERFD), emulated in user space for fio alone,
 * which is started with LD_PRELOAD (qemu-tests/bench/guest/bench.sh). Nothing in the measured
 * I/O path: fio keeps its job table in shared memory and its helper thread (disk-utilisation
 * sampling, status) sleeps on a timerfd.
 *
 * System V shared memory: fio creates one IPC_PRIVATE segment and attaches it before forking
 * the jobs; an anonymous shared mapping made at shmget() is inherited by the children and
 * shared the same way. Only IPC_PRIVATE; shmctl IPC_RMID / IPC_STAT.
 *
 * timerfd: a pipe whose read end is the "timer fd"; a thread per timer writes one 8-byte
 * expiration count into it when the timer expires. One-shot and periodic relative timers
 * (flags 0) on CLOCK_MONOTONIC, which is what fio uses; timerfd_settime drops expirations
 * not read yet, as the real one resets the count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_SEGS 64
static struct { size_t size; void *addr; int used; } segs[MAX_SEGS];
static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;

int shmget(key_t key, size_t size, int flags)
{
	int i, id = -1;
	(void)flags;
	if (key != IPC_PRIVATE) { errno = ENOSYS; return -1; }
	pthread_mutex_lock(&seg_lock);
	for (i = 0; i < MAX_SEGS; i++) {
		if (!segs[i].used) {
			void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (p != MAP_FAILED) {
				segs[i].size = size; segs[i].addr = p; segs[i].used = 1;
				id = i;
			}
			break;
		}
	}
	pthread_mutex_unlock(&seg_lock);
	if (id < 0 && i == MAX_SEGS) errno = ENOSPC;
	return id;
}

void *shmat(int id, const void *addr, int flags)
{
	(void)addr; (void)flags;
	if (id < 0 || id >= MAX_SEGS || !segs[id].used) { errno = EINVAL; return (void *)-1; }
	return segs[id].addr;
}

int shmdt(const void *addr)
{
	int i;
	for (i = 0; i < MAX_SEGS; i++)
		if (segs[i].used && segs[i].addr == addr) {
			munmap(segs[i].addr, segs[i].size);
			segs[i].used = 0;
			return 0;
		}
	errno = EINVAL;
	return -1;
}

int shmctl(int id, int cmd, struct shmid_ds *buf)
{
	if (id < 0 || id >= MAX_SEGS || !segs[id].used) { errno = EINVAL; return -1; }
	if (cmd == IPC_STAT && buf) {
		memset(buf, 0, sizeof(*buf));
		buf->shm_segsz = segs[id].size;
		buf->shm_nattch = 1;
	}
	return 0; /* IPC_RMID: the mapping goes away with its last user */
}

struct ftimer {
	int rd, wr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct timespec next;     /* 0: disarmed */
	struct timespec interval;
	struct itimerspec cur;
};
#define MAX_TIMERS 16
static struct ftimer *timers[MAX_TIMERS];
static pthread_mutex_t timers_lock = PTHREAD_MUTEX_INITIALIZER;

static int armed(const struct timespec *t) { return t->tv_sec || t->tv_nsec; }
static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}
static void add(struct timespec *t, const struct timespec *d)
{
	t->tv_sec += d->tv_sec; t->tv_nsec += d->tv_nsec;
	if (t->tv_nsec >= 1000000000L) { t->tv_sec++; t->tv_nsec -= 1000000000L; }
}

static void forget_timer(struct ftimer *t)
{
	int i;
	pthread_mutex_lock(&timers_lock);
	for (i = 0; i < MAX_TIMERS; i++)
		if (timers[i] == t) timers[i] = NULL;
	pthread_mutex_unlock(&timers_lock);
}

static void *timer_thread(void *arg)
{
	struct ftimer *t = arg;
	sigset_t pipe_sig;
	/* fio closes the timer fd when it is done: the write then fails with EPIPE instead of
	 * killing fio with SIGPIPE, and the thread ends. */
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_sig, NULL);
	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct timespec now;
		if (!armed(&t->next)) { pthread_cond_wait(&t->cond, &t->lock); continue; }
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (before(&now, &t->next)) {
			struct timespec until = t->next;
			pthread_cond_timedwait(&t->cond, &t->lock, &until);
			continue;
		}
		{
			uint64_t one = 1;
			if (write(t->wr, &one, sizeof(one)) < 0 && errno == EPIPE) {
				pthread_mutex_unlock(&t->lock);
				forget_timer(t);
				close(t->wr);
				return NULL;
			}
		}
		if (armed(&t->interval)) add(&t->next, &t->interval);
		else memset(&t->next, 0, sizeof(t->next));
	}
	return NULL;
}

int timerfd_create(int clockid, int flags)
{
	struct ftimer *t;
	pthread_condattr_t ca;
	pthread_t th;
	int p[2], i;
	(void)clockid;
	if (pipe2(p, O_CLOEXEC) < 0) return -1;
	if (flags & TFD_NONBLOCK) fcntl(p[0], F_SETFL, O_NONBLOCK);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	t = calloc(1, sizeof(*t));
	if (!t) { close(p[0]); close(p[1]); errno = ENOMEM; return -1; }
	t->rd = p[0]; t->wr = p[1];
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_mutex_lock(&timers_lock);
	for (i = 0; i < MAX_TIMERS; i++)   /* the fd number was closed and reused: stale */
		if (timers[i] && timers[i]->rd == t->rd) timers[i] = NULL;
	for (i = 0; i < MAX_TIMERS && timers[i]; i++)
		;
	if (i < MAX_TIMERS) timers[i] = t;
	pthread_mutex_unlock(&timers_lock);
	if (i == MAX_TIMERS || pthread_create(&th, NULL, timer_thread, t)) {
		close(p[0]); close(p[1]); errno = EMFILE; return -1;
	}
	pthread_detach(th);
	return t->rd;
}

static struct ftimer *find_timer(int fd)
{
	int i;
	for (i = 0; i < MAX_TIMERS; i++)
		if (timers[i] && timers[i]->rd == fd) return timers[i];
	return NULL;
}

int timerfd_settime(int fd, int flags, const struct itimerspec *nv, struct itimerspec *old)
{
	struct ftimer *t = find_timer(fd);
	uint64_t drain[16];
	int fl;
	if (!t || (flags & TFD_TIMER_ABSTIME)) { errno = EINVAL; return -1; }
	pthread_mutex_lock(&t->lock);
	if (old) *old = t->cur;
	fl = fcntl(t->rd, F_GETFL);
	fcntl(t->rd, F_SETFL, fl | O_NONBLOCK);
	while (read(t->rd, drain, sizeof(drain)) > 0)
		;
	fcntl(t->rd, F_SETFL, fl);
	t->cur = *nv;
	t->interval = nv->it_interval;
	memset(&t->next, 0, sizeof(t->next));
	if (armed(&nv->it_value)) {
		clock_gettime(CLOCK_MONOTONIC, &t->next);
		add(&t->next, &nv->it_value);
	}
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int timerfd_gettime(int fd, struct itimerspec *cur)
{
	struct ftimer *t = find_timer(fd);
	if (!t) { errno = EINVAL; return -1; }
	*cur = t->cur;
	return 0;
}
