/* sqlite_fault: a fault-injecting allocator for SQLite, shared by the store
 * tests (store_test, store_faults_test). Once installed, every allocation
 * SQLite makes goes through it, one at a time (no lookaside: each can be
 * failed), and one of them can be made to fail. */
#ifndef CS_SQLITE_FAULT_H
#define CS_SQLITE_FAULT_H

/* Install the allocator: call first in main(), before SQLite is used.
 * 0, or -1 (said on stderr) when SQLite refuses it. */
int sqlf_install(void);

/* Arm: the allocation n allocations from now (n >= 0; 0 = the next) fails,
 * once; n = -1 disarms. */
void sqlf_fail_at(long n);

/* Disarm and say what was left: -1 when the armed allocation failed (or
 * none was armed), >= 0 when fewer allocations than armed were made (so
 * every one before has been tried). */
long sqlf_disarm(void);

#endif
