/* file: per direction a directory DIR/down or DIR/up; the writer writes a temp file beside the
 * agreed name and renames it onto it, the reader, told by inotify (IN_MOVED_TO), opens, reads
 * and removes it. Open, write, close, rename; read (inotify), open, read, close, unlink. */
#include <fcntl.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "pingpong.h"

static char dirs[2][PATH_MAX], paths[2][PATH_MAX], tmps[2][PATH_MAX];
static const char *txpath, *txtmp, *rxpath;
static int watch[2], inot;

static void setup(const char *dir) {
    for (int i = 0; i < 2; i++) {
        snprintf(dirs[i], PATH_MAX, "%s/%s", dir, i ? "up" : "down");
        snprintf(paths[i], PATH_MAX, "%s/msg", dirs[i]);
        if (mkdir(dirs[i], 0700)) die("mkdir");
        /* Made before the fork, so no message can come before its reader watches. */
        watch[i] = inotify_init1(IN_CLOEXEC);
        if (watch[i] < 0 || inotify_add_watch(watch[i], dirs[i], IN_MOVED_TO) < 0) die("inotify");
    }
}

static void open_side(int child) {
    int t = child ? 1 : 0, r = child ? 0 : 1;
    snprintf(tmps[t], PATH_MAX, "%s/.msg.%d.tmp", dirs[t], (int)getpid());
    txpath = paths[t], txtmp = tmps[t], rxpath = paths[r];
    inot = watch[r];
    close(watch[t]);
}

static void send_msg(const char *buf, size_t n) {
    int fd = CALL(open(txtmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd < 0) die("open");
    if (CALL(write(fd, buf, n)) != (ssize_t)n) die("write");
    CALL(close(fd));
    if (CALL(rename(txtmp, txpath))) die("rename");
}

static void recv_msg(char *buf, size_t n) {
    char ev[4096];
    if (CALL(read(inot, ev, sizeof ev)) <= 0) die("read inotify");
    int fd = CALL(open(rxpath, O_RDONLY | O_CLOEXEC));
    if (fd < 0) die("open");
    if (CALL(read(fd, buf, n)) != (ssize_t)n) die("read");
    CALL(close(fd));
    if (CALL(unlink(rxpath))) die("unlink");
}

static void cleanup(void) {
    for (int i = 0; i < 2; i++) rmdir(dirs[i]);
}
