#!/usr/bin/env bash
# README.md runs as written.
#
#   readme_test.sh BUILD_DIR STATE_DIR
#
# The rule (also stated in an HTML comment in README.md, right before its
# first block, where whoever adds a block sees it):
#   - every ```sh block of README.md is a command block: this test runs them
#     all, in order, in one bash process (set -euo pipefail), each from the
#     top of the checkout, after nothing but a fresh shell: the first block
#     is the quick start (hsm-setup/quickstart) itself;
#   - a ```sh block right after the line `<!-- readme-test: skip ... -->` is
#     not run (only hsm-setup/run-tests, which runs this test);
#   - output, transcripts with `$ ` prompts and configuration go in
#     ```console, ```text or plain ``` blocks, which are not run;
#   - a command block has no placeholders (it captures ids in variables and
#     creates the files it reads), writes only where git ignores
#     (.credsign-dev/, a mktemp directory), and can be run again: the test
#     runs the whole README twice, each time in a fresh shell.
#
# Isolation: the blocks run in a throwaway copy of the checkout
# ($STATE/readme/checkout: the sources copied, `build` a link to BUILD_DIR)
# with its own .credsign-dev/ (CREDSIGN_DEV_DIR) and a free port
# (CREDSIGN_DEV_PORT, read by hsm-setup/dev-env), so the developer's
# .credsign-dev/ and port 8443 are never touched. The shell starts from an
# empty environment (env -i) but PATH, HOME (the test's own), the sanitizer
# options, those two, CREDSIGN_BUILD_DIR=BUILD_DIR and CREDSIGN_DEV_NO_BUILD
# (the suite has built it; nothing is rebuilt under the other tests). A
# failure names the README line of the block that failed. Afterwards every file the blocks created in the copy must be one
# git ignores (no litter in the checkout), and the daemon the quick start
# left running is stopped and its log must hold no sanitizer report. In the
# Asan build an `openssl` shim preloads the sanitizer runtimes for the stock
# openssl command, which loads the sanitized provider.
set -euo pipefail

build=$(cd "$1" && pwd)
mkdir -p "$2"
state=$(cd "$2" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
readme=$src/README.md

work=$state/readme
view=$work/checkout
# a daemon left by an earlier, interrupted run of this test
if [ -f "$view/.credsign-dev/credsignd.pid" ]; then
	kill -TERM "$(cat "$view/.credsign-dev/credsignd.pid")" 2>/dev/null || true
fi
rm -rf "$work"
mkdir -p "$view" "$work/home"

# the copy: every top-level entry but the VCS, build trees and dev state
shopt -s dotglob nullglob
for e in "$src"/*; do
	case ${e##*/} in
	.git | .credsign-dev | build | build-* | cmake-build-*) ;;
	*) cp -a "$e" "$view/" ;;
	esac
done
shopt -u dotglob nullglob
ln -s "$build" "$view/build"
(cd "$view" && find . -path ./.credsign-dev -prune -o -path ./build -prune -o -print | sort) > "$work/before"

# stop the daemon the quick start left running (its pid file, not a name)
stop_daemon() {
	local pidfile=$view/.credsign-dev/credsignd.pid
	if [ -f "$pidfile" ]; then
		local pid
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$pidfile"
	fi
}
trap stop_daemon EXIT

# The script: each ```sh block, marked with its README line.
blocks=$work/blocks.sh
awk -v countfile="$work/nblocks" '
	BEGIN { inblock = 0; run = 0; n = 0; prev = "" }
	!inblock && /^[ \t]*```/ {
		fence = $0
		sub(/^[ \t]*```/, "", fence)
		sub(/[ \t]+$/, "", fence)
		indent = index($0, "```") - 1
		inblock = 1
		if (fence == "bash" || fence == "shell" || fence == "zsh") {
			printf "README.md:%d: a ```%s block: commands go in ```sh blocks, output in ```console or ```text\n", NR, fence > "/dev/stderr"
			bad = 1
		}
		run = fence == "sh" && prev !~ /^[ \t]*<!-- readme-test: skip/
		if (fence == "sh" && !run)
			printf "echo \"readme: README.md:%d: skipped (readme-test: skip)\"\n", NR
		if (run) {
			n++
			start = NR
			printf "__readme_line=%d\n", NR
			printf "cd \"$__readme_top\"; set -euo pipefail\n"
			printf "echo \"readme: README.md:%d: block %d\"\n", NR, n
		}
		prev = $0
		next
	}
	inblock && /^[ \t]*```[ \t]*$/ { inblock = 0; prev = $0; next }
	inblock {
		if (run) {
			line = $0
			if (line ~ /run-tests/) {
				# the suite runs this test: never from inside it
				printf "README.md:%d: a block that runs hsm-setup/run-tests needs the readme-test: skip comment before it\n", start > "/dev/stderr"
				bad = 1
			}
			if (line ~ /^[ \t]*[$] /) {
				printf "README.md:%d: a ```sh block with a $ prompt (a transcript): make it ```console\n", start > "/dev/stderr"
				bad = 1
			}
			if (substr(line, 1, indent) ~ /^[ \t]*$/)
				line = substr(line, indent + 1)
			print line
		}
		next
	}
	/[^ \t]/ { prev = $0 }
	END {
		if (inblock) { print "README.md: a code block is not closed" > "/dev/stderr"; exit 1 }
		if (bad) exit 1
		printf "__readme_line=0\necho \"readme: %d blocks ran\"\n", n
		print n > countfile
	}' "$readme" > "$blocks.body" 2> "$work/awk.err" || { echo "not ok - README.md's code blocks:"; cat "$work/awk.err"; exit 1; }
nblocks=$(cat "$work/nblocks")
{
	echo 'set -euo pipefail'
	echo "__readme_top='$view'"
	echo '__readme_line=0'
	# set -e ends the shell at the failing command: say which block it was
	echo 'trap '\''__rc=$?; if [ "$__readme_line" != 0 ]; then echo "readme_test: FAILED: the block at README.md:$__readme_line (exit $__rc)" >&2; fi'\'' EXIT'
	cat "$blocks.body"
} > "$blocks"
echo "README.md: $nblocks command blocks"
[ "$nblocks" -ge 3 ] || { echo 'not ok - too few sh blocks found in README.md'; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# In the sanitized build the stock openssl command loads the sanitized
# provider: an `openssl` ahead of /usr/bin preloads the runtimes for it alone
# (its own leaks are not ours; as cli_provider does). Every other program
# runs as the README says.
path=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin
if grep -q '^CMAKE_BUILD_TYPE:[A-Z]*=Asan$' "$build/CMakeCache.txt"; then
	cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
	mkdir -p "$work/shim"
	cat > "$work/shim/openssl" <<SHIM
#!/bin/sh
LD_PRELOAD=$("$cc" -print-file-name=libasan.so):$("$cc" -print-file-name=libubsan.so) ASAN_OPTIONS=detect_leaks=0 exec /usr/bin/openssl "\$@"
SHIM
	chmod +x "$work/shim/openssl"
	path=$work/shim:$path
fi
fresh_shell() {
	local keep=()
	for v in ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS; do
		[ -z "${!v:-}" ] || keep+=("$v=${!v}")
	done
	(cd "$view" && env -i PATH="$path" HOME="$work/home" \
		LANG=C.UTF-8 TERM=dumb CREDSIGN_DEV_DIR="$view/.credsign-dev" CREDSIGN_BUILD_DIR="$build" \
		CREDSIGN_DEV_PORT="$port" CREDSIGN_DEV_NO_BUILD=1 ${keep[@]+"${keep[@]}"} bash --noprofile --norc "$blocks")
}

failed=0
for pass in 1 2; do
	start=$(date +%s%N)
	if fresh_shell > "$work/pass$pass.log" 2>&1 && grep -q "^readme: $nblocks blocks ran$" "$work/pass$pass.log"; then
		echo "ok - README.md runs as written, pass $pass ($((($(date +%s%N) - start) / 1000000)) ms)"
	else
		echo "not ok - README.md runs as written, pass $pass; its output:"
		tail -40 "$work/pass$pass.log"
		failed=1
		break
	fi
done

# the blocks wrote nothing into the checkout that git would see
(cd "$view" && find . -path ./.credsign-dev -prune -o -path ./build -prune -o -print | sort) > "$work/after"
new=$(comm -13 "$work/before" "$work/after")
litter=()
while IFS= read -r f; do
	[ -n "$f" ] || continue
	if git -C "$src" rev-parse --git-dir >/dev/null 2>&1 && git -C "$src" check-ignore -q --no-index "${f#./}"; then
		continue
	fi
	litter+=("$f")
done <<< "$new"
if [ ${#litter[@]} -eq 0 ]; then
	echo "ok - the blocks leave no file git would see in the checkout"
else
	echo "not ok - the blocks wrote ${#litter[@]} file(s) into the checkout that git would see: ${litter[*]:0:10}"
	failed=1
fi

# the daemon ran in the background: its sanitizer reports are in its log
stop_daemon
if grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$view/.credsign-dev/credsignd.log" 2>/dev/null; then
	echo "not ok - the daemon's log has sanitizer reports"
	failed=1
fi
[ "$failed" -eq 0 ]
