/* posix-shm-futex: per direction a word in POSIX shared memory that carries the message's
 * number, the message beside it; the receiver sleeps in FUTEX_WAIT until the word changes, the
 * sender wakes it with FUTEX_WAKE when it said it sleeps. No spinning: the plain futex hand-off. */
#include <fcntl.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "pingpong.h"

struct end {
    _Alignas(128) _Atomic uint32_t seq;
    _Alignas(128) _Atomic uint32_t sleeping;
    _Alignas(128) char data[];
};
static struct end *dir_[2], *tx, *rx;
static uint32_t sent, taken;

static void setup(const char *dir) {
    (void)dir;
    size_t len = sizeof(struct end) + size;
    for (int i = 0; i < 2; i++) {
        char name[64];
        snprintf(name, sizeof name, "/bench-c-%d-%d", (int)getpid(), i);
        int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) die("shm_open");
        shm_unlink(name);
        if (ftruncate(fd, (off_t)len)) die("ftruncate");
        dir_[i] = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (dir_[i] == MAP_FAILED) die("mmap");
        close(fd);
    }
}

static void open_side(int child) {
    tx = dir_[child ? 1 : 0];
    rx = dir_[child ? 0 : 1];
}

static void send_msg(const char *buf, size_t n) {
    memcpy(tx->data, buf, n);
    atomic_store(&tx->seq, ++sent);
    if (atomic_load(&tx->sleeping)) CALL(syscall(SYS_futex, &tx->seq, FUTEX_WAKE, 1, 0, 0, 0));
}

static void recv_msg(char *buf, size_t n) {
    uint32_t want = ++taken;
    while (atomic_load(&rx->seq) != want) {
        uint32_t seen = atomic_load(&rx->seq);
        atomic_store(&rx->sleeping, 1);
        /* 100 ms at most, as the bench's ring: a lost wake-up would cost a pause, not a hang. */
        struct timespec t = {0, 100000000};
        if (atomic_load(&rx->seq) == seen) CALL(syscall(SYS_futex, &rx->seq, FUTEX_WAIT, seen, &t, 0, 0));
        atomic_store(&rx->sleeping, 0);
    }
    memcpy(buf, rx->data, n);
}

static void cleanup(void) {}
