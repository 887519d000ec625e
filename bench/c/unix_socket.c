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

static void send_msg(const char *buf, size_t n) { write_all(fd, buf, n); }

static void recv_msg(char *buf, size_t n) { read_all(fd, buf, n); }

static void cleanup(void) {}
