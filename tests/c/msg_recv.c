/* The note's process B: msgget(key, 0), msgrcv(type 1), printf("%s\n"), then (unlike the note)
 * removes the queue. Usage: msg_recv KEY */
#include <stdio.h>
#include <stdlib.h>
#include <sys/msg.h>

/* The largest message text, kernel.msgmax: tests::c_program passes msgq_ipc::msgmax(). */
#ifndef MSGMAX
#error "compile with -DMSGMAX=$(cat /proc/sys/kernel/msgmax)"
#endif
struct msgbuf_c { long mtype; char mtext[MSGMAX]; };

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: msg_recv KEY\n"); return 2; }
    key_t key = (key_t)strtoul(argv[1], NULL, 0);
    int id = msgget(key, 0);
    if (id < 0) { perror("msgget"); return 1; }
    struct msgbuf_c buf;
    if (msgrcv(id, &buf, sizeof buf.mtext, 1, 0) < 0) { perror("msgrcv"); return 1; }
    printf("%s\n", buf.mtext);
    if (msgctl(id, IPC_RMID, NULL) < 0) { perror("msgctl"); return 1; }
    return 0;
}
