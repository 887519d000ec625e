/* posix-shm-futex: the bench's futex ring (src/ring.rs), step for step. Per direction a POSIX
 * shared-memory object: a first page of control words, each on a 128-byte line of its own (the
 * consumer's count, a "sleeps" flag for each side, the CPU each end last ran on, +1), then 8
 * slots (64 bytes each at 64 B). The sender copies the message after its first 8 bytes (the
 * head: its number) into the next slot, stores the head last, and makes FUTEX_WAKE only if the
 * receiver said it sleeps. The receiver waits until the slot's head differs from the one it took
 * from it a lap ago: it spins ~2 µs of pause instructions (counted before the fork, as the bench
 * does; one look only when the sender last ran on its own CPU), gives the CPU up (sched_yield),
 * spins again, and from the 25th round on says it sleeps, looks once more and sleeps in
 * FUTEX_WAIT (100 ms at most) on the head's low 32 bits. Then it copies the message out, hands
 * the slot back (its count) and wakes a sender that sleeps on a full ring (never in a ping-pong).
 * Calls per message: none while the peer answers on another CPU within the spin; one sched_yield
 * to receive when both share a CPU; FUTEX_WAIT and FUTEX_WAKE only after 24 yields in vain. */
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "pingpong.h"

enum { PAGE = 4096, SLOTS = 8, LINE = 128, YIELDS_BEFORE_SLEEP = 25, SPIN_MAX = 4000 };
/* The control words, by line. */
enum { TAIL, CONSUMER_SLEEPS, PRODUCER_SLEEPS, PRODUCER_CPU, CONSUMER_CPU };

/* std::hint::spin_loop. */
#if defined(__x86_64__) || defined(__i386__)
#define PAUSE() __asm__ __volatile__("pause" ::: "memory")
#elif defined(__aarch64__)
#define PAUSE() __asm__ __volatile__("isb" ::: "memory")
#else
#define PAUSE() atomic_signal_fence(memory_order_seq_cst)
#endif

/* One end of a ring: tx is this process's producer end, rx its consumer end. */
struct ring {
    char *mem;
    uint32_t count;       /* messages sent (producer) or taken (consumer) */
    uint32_t seen;        /* producer: the consumer's count as last read */
    uint64_t last[SLOTS]; /* consumer: the head taken from each slot a lap ago */
    uint32_t cpu;         /* the CPU this end last said it runs on (+1) */
};
static char *obj[2];
static struct ring tx, rx;
static size_t stride;
static uint32_t spins = 1000; /* pause instructions in ~2 µs */

static _Atomic uint32_t *control(struct ring *r, int which) {
    return (_Atomic uint32_t *)(r->mem + which * LINE);
}
static size_t slot(uint32_t n) { return PAGE + (n % SLOTS) * stride; }
static _Atomic uint64_t *head(struct ring *r, uint32_t n) {
    return (_Atomic uint64_t *)(r->mem + slot(n));
}

/* sched_getcpu: from rseq or the vDSO, no system call. */
static uint32_t this_cpu(void) {
    int c = sched_getcpu();
    return c < 0 ? 0 : (uint32_t)c + 1;
}

static uint32_t say_cpu(struct ring *r, int mine) {
    uint32_t now = this_cpu();
    if (now != r->cpu) {
        r->cpu = now;
        atomic_store_explicit(control(r, mine), now, memory_order_relaxed);
    }
    return now;
}

/* Whether spinning can help: the peer last ran on another CPU than this end. */
static int peer_elsewhere(struct ring *r, uint32_t mine, int theirs) {
    uint32_t peer = atomic_load_explicit(control(r, theirs), memory_order_relaxed);
    return mine == 0 || peer == 0 || peer != mine;
}

/* The producer waits for room (the consumer's count), the consumer for slot n's new head. */
static int ready(struct ring *r, int producer, uint32_t n, uint64_t *v) {
    if (producer) {
        uint32_t t = atomic_load_explicit(control(r, TAIL), memory_order_acquire);
        *v = t;
        return n - t < SLOTS;
    }
    *v = atomic_load_explicit(head(r, n), memory_order_acquire);
    return *v != r->last[n % SLOTS];
}

static uint64_t wait_until(struct ring *r, int producer, uint32_t n, int spin) {
    /* The futex word: the count, or the head's low 32 bits (little-endian: its first 4 bytes). */
    uint32_t *word = producer ? (uint32_t *)control(r, TAIL) : (uint32_t *)head(r, n);
    _Atomic uint32_t *flag = control(r, producer ? PRODUCER_SLEEPS : CONSUMER_SLEEPS);
    uint32_t k = spin ? spins : 1;
    uint64_t v;
    for (uint32_t rounds = 1;; rounds++) {
        for (uint32_t i = 0; i < k; i++) {
            if (ready(r, producer, n, &v)) return v;
            PAUSE();
        }
        if (rounds < YIELDS_BEFORE_SLEEP) {
            CALL(sched_yield());
            continue;
        }
        /* Announce the sleep, look again, sleep only if the word is unchanged (as ring.rs). */
        uint32_t seen = producer ? atomic_load(control(r, TAIL)) : (uint32_t)atomic_load(head(r, n));
        atomic_store(flag, 1);
        if (ready(r, producer, n, &v)) {
            atomic_store(flag, 0);
            return v;
        }
        /* 100 ms at most, as the bench's ring: a lost wake-up would cost a pause, not a hang. */
        struct timespec t = {0, 100000000};
        CALL(syscall(SYS_futex, word, FUTEX_WAIT, seen, &t, 0, 0));
        atomic_store(flag, 0);
    }
}

/* ring::calibrate_spin: pause instructions in 2 µs, measured once before the fork. */
static void calibrate(void) {
    uint32_t n = 100000;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < n; i++) PAUSE();
    uint64_t ns = now_ns() - t0;
    double per = (double)(ns ? ns : 1) / n;
    double s = 2000.0 / per;
    spins = s < 16 ? 16 : s > SPIN_MAX ? SPIN_MAX : (uint32_t)s;
}

static void setup(const char *dir) {
    (void)dir;
    stride = size >= PAGE ? (size + PAGE - 1) / PAGE * PAGE : (size + 63) / 64 * 64;
    size_t len = PAGE + SLOTS * stride;
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "/bench-c-%d-%d", (int)getpid(), i);
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("shm_open");
        shm_unlink(name);
        if (ftruncate(fd, (off_t)len)) die("ftruncate");
        obj[i] = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (obj[i] == MAP_FAILED) die("mmap");
        close(fd);
    }
    calibrate();
}

static void open_side(int child) {
    tx.mem = obj[child ? 1 : 0];
    rx.mem = obj[child ? 0 : 1];
}

static void send_msg(const char *buf, size_t n) {
    uint32_t k = tx.count;
    uint32_t cpu = say_cpu(&tx, PRODUCER_CPU);
    if (k - tx.seen >= SLOTS)
        tx.seen = (uint32_t)wait_until(&tx, 1, k, peer_elsewhere(&tx, cpu, CONSUMER_CPU));
    memcpy(tx.mem + slot(k) + 8, buf + 8, n - 8);
    uint64_t first;
    memcpy(&first, buf, 8);
    atomic_store(head(&tx, k), first);
    if (atomic_load(control(&tx, CONSUMER_SLEEPS)))
        CALL(syscall(SYS_futex, head(&tx, k), FUTEX_WAKE, 1, 0, 0, 0));
    tx.count = k + 1;
}

static void recv_msg(char *buf, size_t n) {
    uint32_t k = rx.count;
    uint32_t cpu = say_cpu(&rx, CONSUMER_CPU);
    uint64_t first = wait_until(&rx, 0, k, peer_elsewhere(&rx, cpu, PRODUCER_CPU));
    memcpy(buf, &first, 8);
    memcpy(buf + 8, rx.mem + slot(k) + 8, n - 8);
    rx.last[k % SLOTS] = first;
    rx.count = k + 1;
    atomic_store(control(&rx, TAIL), rx.count);
    if (atomic_load(control(&rx, PRODUCER_SLEEPS)))
        CALL(syscall(SYS_futex, control(&rx, TAIL), FUTEX_WAKE, 1, 0, 0, 0));
}

static void cleanup(void) {}
