/* The C side of `bench --vs-c`: a plain ping-pong of the same system calls as the bench's row,
 * between a parent and a forked child, each round trip timed. Around the calls it does what the
 * bench's round trips do (src/run.rs, src/msg.rs), no more: the message's every word is built
 * from its number when it is sent, the receive buffer is poisoned (zeroed) before each receive,
 * and every word is checked on receipt, all inside the timed round trip; so a ratio compares
 * the calls and the copies, not the harnesses. Each mechanism's file defines
 * setup() (before the fork), open_side() (after it, in each process), send_msg(), recv_msg() and
 * cleanup() (the parent, at the end), and makes every system call of a message through CALL(),
 * which counts it.
 *
 * Usage: PROGRAM SIZE RTTS WARMUP PARENT_CPU CHILD_CPU DIR   (a CPU of -1: not pinned)
 * Prints: p50_ns SEND_CALLS RECV_CALLS (system calls per message on the sending and on the
 * receiving side, both directions averaged). Compiled with -D_GNU_SOURCE (bench --vs-c). */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned long calls;
#define CALL(x) (calls++, (x))

static pid_t peer;
static size_t size;

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

static void setup(const char *dir);
static void open_side(int child);
static void send_msg(const char *buf, size_t n);
static void recv_msg(char *buf, size_t n);
static void cleanup(void);

/* A byte stream's whole message: write (read) until all n bytes are through, each call counted.
 * Static inline, so a program that carries no stream does not warn of them. */
static inline void write_all(int fd, const char *buf, size_t n) {
    while (n) {
        ssize_t k = CALL(write(fd, buf, n));
        if (k < 0) die("write");
        buf += k, n -= (size_t)k;
    }
}

static inline void read_all(int fd, char *buf, size_t n) {
    while (n) {
        ssize_t k = CALL(read(fd, buf, n));
        if (k <= 0) die("read");
        buf += k, n -= (size_t)k;
    }
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set)) die("sched_setaffinity");
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The bench's message (src/msg.rs), in 8-byte little-endian words: word 0, the head, is the
 * number (times an odd constant, 7 bits a byte, the top bit of every byte set: never zero, never
 * the same twice); word i >= 1 is (mix(number) ^ i * ODD) | TOP. */
#define TOP 0x8080808080808080ull
#define ODD (0x0101010101010101ull * 0x3b)
#define SPREAD 0x00d6e8feb86659fdull

/* A message's head and hash key, computed before the clock starts (as the bench's Stamp). */
struct stamp {
    uint64_t head, key;
};

static struct stamp stamp_of(uint64_t seq) {
    uint64_t t = seq * SPREAD & ((1ull << 56) - 1), head = TOP;
    for (int k = 0; k < 8; k++) head |= (t >> (7 * k) & 0x7f) << (8 * k);
    uint64_t z = seq + 0x9e3779b97f4a7c15ull; /* splitmix64's finaliser */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (struct stamp){head, z ^ (z >> 31)};
}

static void fill(char *buf, const struct stamp *s) {
    memcpy(buf, &s->head, 8);
    uint64_t step = ODD;
    for (size_t i = 8; i + 8 <= size; i += 8, step += ODD) {
        uint64_t w = (s->key ^ step) | TOP;
        memcpy(buf + i, &w, 8);
    }
}

static void check(const char *buf, const struct stamp *s, long seq) {
    uint64_t w, diff, step = ODD;
    memcpy(&w, buf, 8);
    diff = w ^ s->head;
    for (size_t i = 8; i + 8 <= size; i += 8, step += ODD) {
        memcpy(&w, buf + i, 8);
        diff |= w ^ ((s->key ^ step) | TOP);
    }
    if (diff) {
        fprintf(stderr, "message %ld: not its bytes\n", seq);
        exit(1);
    }
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s SIZE RTTS WARMUP PARENT_CPU CHILD_CPU DIR\n", argv[0]);
        return 2;
    }
    size = strtoul(argv[1], 0, 10);
    long rtts = atol(argv[2]), warm = atol(argv[3]);
    int pcpu = atoi(argv[4]), ccpu = atoi(argv[5]);
    if (size < 8 || size % 8 || rtts < 1) return 2;
    /* The bench blocks its stop signals and SIGRTMIN in every thread, and a spawned program
     * inherits the mask: unblocked here, so that a stop ends this program too. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, 0);
    alarm(120); /* never hangs for good */
    /* Page-aligned, as the bench's buffers (src/buf.rs): the parent's outgoing and incoming. */
    char *buf = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    char *out = aligned_alloc(4096, (size + 4095) / 4096 * 4096);
    uint64_t *ns = malloc(rtts * sizeof *ns);
    if (!buf || !out || !ns) die("malloc");
    setup(argv[6]);
    int counts[2];
    if (pipe(counts)) die("pipe");
    pid_t parent = getpid();
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(counts[0]);
        pin(ccpu);
        peer = parent;
        open_side(1);
        unsigned long sent = 0, taken = 0;
        for (long i = 0; i < warm + rtts; i++) {
            struct stamp s = stamp_of((uint64_t)i);
            unsigned long c0 = calls;
            memset(buf, 0, size);
            recv_msg(buf, size);
            check(buf, &s, i);
            unsigned long c1 = calls;
            send_msg(buf, size); /* the answer: the message as it came */
            if (i >= warm) taken += c1 - c0, sent += calls - c1;
        }
        char line[64];
        int n = snprintf(line, sizeof line, "%lu %lu", sent, taken);
        if (write(counts[1], line, n) != n) die("write");
        _exit(0);
    }
    close(counts[1]);
    pin(pcpu);
    peer = child;
    open_side(0);
    unsigned long sent = 0, taken = 0;
    for (long i = 0; i < warm + rtts; i++) {
        struct stamp s = stamp_of((uint64_t)i);
        unsigned long c0 = calls;
        uint64_t t0 = now_ns();
        fill(out, &s);
        send_msg(out, size);
        unsigned long c1 = calls;
        memset(buf, 0, size);
        recv_msg(buf, size);
        check(buf, &s, i);
        uint64_t t = now_ns() - t0;
        if (i >= warm) ns[i - warm] = t, sent += c1 - c0, taken += calls - c1;
    }
    char line[64] = {0};
    if (read(counts[0], line, sizeof line - 1) < 0) die("read");
    unsigned long csent = 0, ctaken = 0;
    sscanf(line, "%lu %lu", &csent, &ctaken);
    int status;
    if (waitpid(child, &status, 0) < 0) die("waitpid");
    cleanup();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "the child failed\n");
        return 1;
    }
    qsort(ns, rtts, sizeof *ns, by_value);
    printf("%llu %.2f %.2f\n", (unsigned long long)ns[rtts / 2], (double)(sent + csent) / (2.0 * rtts),
           (double)(taken + ctaken) / (2.0 * rtts));
    return 0;
}
