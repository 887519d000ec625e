/* posix-mq: two POSIX queues (down, up), unlinked as soon as made (the child inherits them);
 * one mq_send and one mq_receive per message. */
#include <fcntl.h>
#include <mqueue.h>

#include "pingpong.h"

static mqd_t down, up, tx, rx;

static mqd_t make(const char *what) {
    char name[64];
    snprintf(name, sizeof name, "/bench-c-%d-%s", (int)getpid(), what);
    struct mq_attr a = {.mq_maxmsg = 10, .mq_msgsize = (long)size};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
    if (q == (mqd_t)-1) die("mq_open");
    mq_unlink(name);
    return q;
}

static void setup(const char *dir) {
    (void)dir;
    down = make("down");
    up = make("up");
}

static void open_side(int child) {
    tx = child ? up : down;
    rx = child ? down : up;
}

static void send_msg(const char *buf, size_t n) {
    if (CALL(mq_send(tx, buf, n, 0))) die("mq_send");
}

static void recv_msg(char *buf, size_t n) {
    if (CALL(mq_receive(rx, buf, n, 0)) != (ssize_t)n) die("mq_receive");
}

static void cleanup(void) {}
