import koffi from 'koffi';

/**
 * Fixtures are checkpointed, and cr refuses a process holding descriptors it cannot save (a pipe
 * the test runner happens to have open). Nothing this worker inherited above fd 2 is passed on to
 * the processes the tests start: they get exactly the stdio a test gives them.
 */
const CLOSE_RANGE_CLOEXEC = 1 << 2;
const SYS_close_range = 436;
const syscall = koffi.load('libc.so.6').func('long syscall(long number, ...)');
syscall(SYS_close_range, 'unsigned int', 3, 'unsigned int', 0xffffffff, 'unsigned int', CLOSE_RANGE_CLOEXEC);

/**
 * cr run by a test is cr in the test's own process tree, never a cr service that may run on this
 * machine (cr service start): tests that use one say so (test/service.e2e.test.ts).
 */
process.env.CR_NO_SERVICE = '1';
