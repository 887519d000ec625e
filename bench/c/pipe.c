/* pipe: two pipes; one write and one read per message. */
#include "pingpong.h"

static int down[2], up[2], tx, rx;

static void setup(const char *dir) {
    (void)dir;
    if (pipe(down) || pipe(up)) die("pipe");
}

static void open_side(int child) {
    tx = child ? up[1] : down[1];
    rx = child ? down[0] : up[0];
    close(child ? down[1] : down[0]);
    close(child ? up[0] : up[1]);
}

static void send_msg(const char *buf, size_t n) { write_all(tx, buf, n); }

static void recv_msg(char *buf, size_t n) { read_all(rx, buf, n); }

static void cleanup(void) {}
