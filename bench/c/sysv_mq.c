/* sysv-mq: one SysV queue, a message type per direction (1 down, 2 up); the text and its NUL,
 * as the note's C sends it (strlen + 1). One msgsnd and one msgrcv per message. */
#include <sys/msg.h>

#include "pingpong.h"

static int q;
static long tx, rx;
static struct {
    long mtype;
    char text[1 << 16];
} m;

static void setup(const char *dir) {
    (void)dir;
    q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    if (q < 0) die("msgget");
}

static void open_side(int child) {
    tx = child ? 2 : 1;
    rx = child ? 1 : 2;
}

static void send_msg(const char *buf, size_t n) {
    m.mtype = tx;
    memcpy(m.text, buf, n);
    m.text[n] = 0;
    if (CALL(msgsnd(q, &m, n + 1, 0))) die("msgsnd");
}

static void recv_msg(char *buf, size_t n) {
    if (CALL(msgrcv(q, &m, n + 1, rx, 0)) < 0) die("msgrcv");
    memcpy(buf, m.text, n);
}

static void cleanup(void) { msgctl(q, IPC_RMID, 0); }
