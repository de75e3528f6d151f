/* The tree case of npm run bench: "procs N" is a process with N-1 children (each waiting in
 * pause), "threads N" a process with N-1 threads (each waiting on a condition variable). Every
 * task touches a page of its own first. Prints "ready" once all exist, then waits.
 * It closes every descriptor above 2 first, as heap.c does: cr refuses a pipe the bench's own
 * parent happened to pass down, and the bench must not depend on how it was started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;
static volatile char page[4096];

static void *waiter(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  for (;;) pthread_cond_wait(&never, &lock);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3) return 1;
  syscall(SYS_close_range, 3U, ~0U, 0U);
  int n = atoi(argv[2]);
  if (!strcmp(argv[1], "procs")) {
    for (int i = 1; i < n; i++) {
      pid_t child = fork();
      if (child < 0) return 2;
      if (child == 0) {
        page[0] = (char)i;
        for (;;) pause();
      }
    }
  } else if (!strcmp(argv[1], "threads")) {
    for (int i = 1; i < n; i++) {
      pthread_t t;
      if (pthread_create(&t, NULL, waiter, NULL) != 0) return 3;
    }
  } else {
    return 4;
  }
  page[0] = 1;
  printf("ready %d\n", n);
  fflush(stdout);
  for (;;) pause();
}
