/* fifo: two FIFOs in DIR, opened in the same order on both sides; one write and one read per
 * message. */
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "pingpong.h"

static char down[PATH_MAX], up[PATH_MAX];
static int tx, rx;

static void setup(const char *dir) {
    snprintf(down, sizeof down, "%s/down", dir);
    snprintf(up, sizeof up, "%s/up", dir);
    if (mkfifo(down, 0600) || mkfifo(up, 0600)) die("mkfifo");
}

static void open_side(int child) {
    if (child) {
        rx = open(down, O_RDONLY | O_CLOEXEC);
        tx = open(up, O_WRONLY | O_CLOEXEC);
    } else {
        tx = open(down, O_WRONLY | O_CLOEXEC);
        rx = open(up, O_RDONLY | O_CLOEXEC);
    }
    if (tx < 0 || rx < 0) die("open");
}

static void send_msg(const char *buf, size_t n) { write_all(tx, buf, n); }

static void recv_msg(char *buf, size_t n) { read_all(rx, buf, n); }

static void cleanup(void) {
    unlink(down);
    unlink(up);
}
