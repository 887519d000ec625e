/* The note's process A: msgget(key, IPC_CREAT|0600), then msgsnd of type 1 with strlen+1 bytes
 * and IPC_NOWAIT. Usage: msg_send KEY TEXT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>

/* The largest message text, kernel.msgmax: tests::c_program passes msgq_ipc::msgmax(). */
#ifndef MSGMAX
#error "compile with -DMSGMAX=$(cat /proc/sys/kernel/msgmax)"
#endif
struct msgbuf_c { long mtype; char mtext[MSGMAX]; };

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: msg_send KEY TEXT\n"); return 2; }
    key_t key = (key_t)strtoul(argv[1], NULL, 0);
    int id = msgget(key, IPC_CREAT | 0600);
    if (id < 0) { perror("msgget"); return 1; }
    struct msgbuf_c buf = { .mtype = 1 };
    strncpy(buf.mtext, argv[2], sizeof buf.mtext - 1);
    if (msgsnd(id, &buf, strlen(buf.mtext) + 1, IPC_NOWAIT) < 0) { perror("msgsnd"); return 1; }
    return 0;
}
