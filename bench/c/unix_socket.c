/* unix-socket: a socketpair; one write and one read per message. */
#include <sys/socket.h>

#include "pingpong.h"

static int sv[2], fd;

static void setup(const char *dir) {
    (void)dir;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) die("socketpair");
}

static void open_side(int child) {
    fd = sv[child ? 1 : 0];
    close(sv[child ? 0 : 1]);
}

static void send_msg(const char *buf, size_t n) {
    while (n) {
        ssize_t k = CALL(write(fd, buf, n));
        if (k < 0) die("write");
        buf += k, n -= (size_t)k;
    }
}

static void recv_msg(char *buf, size_t n) {
    while (n) {
        ssize_t k = CALL(read(fd, buf, n));
        if (k <= 0) die("read");
        buf += k, n -= (size_t)k;
    }
}

static void cleanup(void) {}
