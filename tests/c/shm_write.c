/* The note's shared-memory writer, with 0600 instead of 0666: shmget, shmat, strcpy, and no
 * semaphore at all. Usage: shm_write KEY TEXT
 * SIZE is shm-ipc's (shm_ipc::SIZE), given by the tests as -DSIZE=..., like the svshm_xfr.h that
 * TLPI's writer and reader share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>

#ifndef SIZE
#error "compile with -DSIZE=<shm_ipc::SIZE>"
#endif

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: shm_write KEY TEXT\n"); return 2; }
    key_t key = (key_t)strtoul(argv[1], NULL, 0);
    int shmid = shmget(key, SIZE, IPC_CREAT | 0600);
    if (shmid < 0) { perror("shmget"); return 1; }
    char *shmaddr = shmat(shmid, (void *)0, 0);
    if (shmaddr == (void *)-1) { perror("shmat"); return 1; }
    strncpy(shmaddr, argv[2], SIZE - 1);
    shmdt(shmaddr);
    return 0;
}
