# sqlite_lock.sh: another process holding a SQLite store's write lock, for
# the integration tests of failing writes (store_fault_test.sh,
# audit_unavailable_test.sh). Source it after lib.sh; it uses $db (the
# store's database file) and $work (the test's scratch directory).
#   lock_on   takes the write lock (BEGIN EXCLUSIVE: readers still read,
#             WAL) in a background python3: 0 once it is held, 1 when not
#             within 5 s. The holder lets go after 30 s at the most.
#   lock_off  releases it and waits for the holder to end.
# shellcheck shell=bash disable=SC2154 # db and work: the sourcing test's
lock_on() {
	rm -f "$work/release" "$work/locked"
	python3 - "$db" "$work/locked" "$work/release" <<'PY' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
for _ in range(600):  # at most 30 s
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
db.execute("ROLLBACK")
PY
	locker=$!
	for _ in $(seq 100); do
		[ -e "$work/locked" ] && return 0
		sleep 0.05
	done
	return 1
}
lock_off() { touch "$work/release"; wait "$locker"; }
