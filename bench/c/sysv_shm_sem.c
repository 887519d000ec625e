/* sysv-shm-sem: per direction a SysV segment of 4 slots and a semaphore pair (free, full), one
 * semop per message on each side (the sender publishes its slot and takes the next free one in
 * one call, the receiver hands back the slot it read and takes the next full one). */
#include <sys/sem.h>
#include <sys/shm.h>

#include "pingpong.h"

#define SLOTS 4
enum { FREE, FULL };

struct end {
    char *mem;
    int sem;
    size_t count;
    int holding;
};
static struct end dir_[2], *tx, *rx;
static size_t stride;

static void semop1(int sem, struct sembuf *ops, size_t n) {
    while (CALL(semop(sem, ops, n))) {
        if (errno != EINTR) die("semop");
    }
}

static void setup(const char *dir) {
    (void)dir;
    stride = size >= 4096 ? (size + 4095) / 4096 * 4096 : (size + 63) / 64 * 64;
    for (int i = 0; i < 2; i++) {
        int shm = shmget(IPC_PRIVATE, SLOTS * stride, IPC_CREAT | 0600);
        if (shm < 0) die("shmget");
        dir_[i].mem = shmat(shm, 0, 0);
        shmctl(shm, IPC_RMID, 0); /* goes with the last detach */
        if (dir_[i].mem == (void *)-1) die("shmat");
        dir_[i].sem = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
        if (dir_[i].sem < 0) die("semget");
        struct sembuf init = {FREE, SLOTS, 0};
        if (semop(dir_[i].sem, &init, 1)) die("semop");
    }
}

static void open_side(int child) {
    tx = &dir_[child ? 1 : 0];
    rx = &dir_[child ? 0 : 1];
}

static void send_msg(const char *buf, size_t n) {
    if (!tx->holding) {
        struct sembuf take = {FREE, -1, 0};
        semop1(tx->sem, &take, 1);
        tx->holding = 1;
    }
    memcpy(tx->mem + (tx->count % SLOTS) * stride, buf, n);
    tx->count++;
    struct sembuf ops[2] = {{FULL, 1, 0}, {FREE, -1, 0}};
    semop1(tx->sem, ops, 2);
}

static void recv_msg(char *buf, size_t n) {
    if (rx->holding) {
        struct sembuf ops[2] = {{FREE, 1, 0}, {FULL, -1, 0}};
        semop1(rx->sem, ops, 2);
    } else {
        struct sembuf take = {FULL, -1, 0};
        semop1(rx->sem, &take, 1);
        rx->holding = 1;
    }
    memcpy(buf, rx->mem + (rx->count % SLOTS) * stride, n);
    rx->count++;
}

static void cleanup(void) {
    semctl(dir_[0].sem, 0, IPC_RMID);
    semctl(dir_[1].sem, 0, IPC_RMID);
}
