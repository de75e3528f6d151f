/* The process of the bench (npm run bench), compiled with cc at bench time.
 *
 *   heap MIB   fills MIB MiB of malloc'd heap with pseudo-random data and prints
 *              "ready <address> <checksum>"; on each SIGUSR1 it checksums the heap again and
 *              prints "sum <checksum>", then waits for the next signal. SIGTERM ends it.
 *   sink MIB   maps MIB MiB of fresh anonymous memory without touching it and prints
 *              "ready <address>": the destination of the raw copy that restore is compared with.
 *
 * It closes every descriptor above 2 first: cr refuses descriptors it cannot save (a pipe the
 * bench's own parent happened to pass down), and the bench must not depend on how it was started.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t asked;
static void on_usr1(int sig) { (void)sig; asked = 1; }

/* Depends on every byte and on where it is: pages swapped around give another sum. */
static uint64_t checksum(const uint64_t *p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += p[i] ^ (i * 0x9e3779b97f4a7c15ULL);
  return s;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s heap|sink MIB\n", argv[0]);
    return 2;
  }
  syscall(SYS_close_range, 3U, ~0U, 0U);
  size_t bytes = (size_t)atol(argv[2]) << 20;
  if (strcmp(argv[1], "sink") == 0) {
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    printf("ready %p\n", m);
    fflush(stdout);
    for (;;) pause();
  }
  size_t n = bytes / sizeof(uint64_t);
  uint64_t *p = malloc(bytes), x = 88172645463325252ULL;
  if (!p) {
    perror("malloc");
    return 1;
  }
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = x;
  }
  /* SIGUSR1 is blocked except inside sigsuspend: a signal sent before the wait is not lost. */
  sigset_t usr1, waiting;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  sigprocmask(SIG_BLOCK, &usr1, &waiting);
  sigdelset(&waiting, SIGUSR1);
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  printf("ready %p %llu\n", (void *)p, (unsigned long long)checksum(p, n));
  fflush(stdout);
  for (;;) {
    while (!asked) sigsuspend(&waiting);
    asked = 0;
    printf("sum %llu\n", (unsigned long long)checksum(p, n));
    fflush(stdout);
  }
}
