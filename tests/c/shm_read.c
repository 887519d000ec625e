/* The note's shared-memory reader: shmget(key, 0, 0), shmat, printf("%s\n"). Usage: shm_read KEY */
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: shm_read KEY\n"); return 2; }
    key_t key = (key_t)strtoul(argv[1], NULL, 0);
    int shmid = shmget(key, 0, 0);
    if (shmid < 0) { perror("shmget"); return 1; }
    char *shmaddr = shmat(shmid, (void *)0, SHM_RDONLY);
    if (shmaddr == (void *)-1) { perror("shmat"); return 1; }
    printf("%s\n", shmaddr);
    shmdt(shmaddr);
    return 0;
}
