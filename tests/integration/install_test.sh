#!/usr/bin/env bash
# Installation (docs/install.md): `cmake --install` into a staging DESTDIR
# puts every file where the FHS expects it and nothing else; the INSTALLED
# programs work from the stage (check-config, key generation, the daemon
# against a SoftHSM2 token and the dev PKI, a generate + certify with the
# installed client, offline verification, SIGHUP, SIGTERM, the installed
# OpenSSL provider); hsm-setup/install-production creates the production
# layout with the modes and owners credsignd expects, idempotently, for two
# accounts (the network process's, --user, and the key process's,
# --key-user, which alone reads the PIN), and the key account's view of it,
# with the unit's capabilities, passes --check-config.
#
#   install_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# under /tmp, not the build tree: the service user must be able to reach it
tmp=$(mktemp -d /tmp/credsign-install.XXXXXX)
chmod 755 "$tmp"
trap 'for p in "${pids[@]}"; do kill "$p" 2> /dev/null; done; rm -rf "$tmp"' EXIT
S=$tmp/stage
S2=$tmp/stage2
pki=$STATE/pki
it_token install || exit 1

# ---- cmake --install into a DESTDIR -------------------------------------------
installs() {
	DESTDIR=$S cmake --install "$BUILD" --prefix /usr > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; return 1; }
}
check "cmake --install into a staging DESTDIR" installs

libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
expected=(
	usr/sbin/credsignd usr/sbin/credsign-admin usr/bin/credsign
	"usr/$libdir/ossl-modules/credsign-pkcs11.so"
	usr/share/credsign/presets.conf usr/share/credsign/credsignd.conf.example
	usr/share/man/man1/credsign.1 usr/share/man/man5/credsignd.conf.5
	usr/share/man/man8/credsignd.8 usr/share/man/man8/credsign-admin.8
	usr/share/bash-completion/completions/credsign usr/share/bash-completion/completions/credsign-admin
	usr/share/bash-completion/completions/credsignd
	usr/share/doc/credsign/README.md
)
for f in "$src"/docs/*.md; do expected+=("usr/share/doc/credsign/${f##*/}"); done

every_path_installed() {
	local f ok=0
	for f in "${expected[@]}"; do
		[ -f "$S/$f" ] || { echo "  missing: /$f"; ok=1; }
	done
	for f in usr/sbin/credsignd usr/sbin/credsign-admin usr/bin/credsign; do
		[ -x "$S/$f" ] || { echo "  not executable: /$f"; ok=1; }
	done
	return $ok
}
check "programs, provider, presets, example, man pages, completions and docs are installed" every_path_installed

nothing_else_installed() { # no test program, benchmark or stray directory
	local want got
	want=$(printf '%s\n' "${expected[@]}" | sort)
	got=$(cd "$S" && find . -type f | sed 's|^\./||' | sort)
	[ "$want" = "$got" ] || { diff <(echo "$want") <(echo "$got") | sed 's/^/  /'; return 1; }
	[ -z "$(find "$S" -type d -empty)" ] || { find "$S" -type d -empty | sed 's/^/  empty: /'; return 1; }
}
check "nothing else is installed" nothing_else_installed

man_finds_pages() {
	local p
	for p in "1 credsign" "8 credsignd" "8 credsign-admin" "5 credsignd.conf"; do
		# shellcheck disable=SC2086
		man --manpath="$S/usr/share/man" -w $p > /dev/null || { echo "  man $p: not found"; return 1; }
	done
}
if command -v man > /dev/null; then check "man finds the four installed pages" man_finds_pages; fi

installed_completion_works() {
	local got
	got=$(bash --norc --noprofile -c '. "$1" && COMP_WORDS=(credsign generate --preset db-p) &&
		COMP_CWORD=3 && _credsign 2> /dev/null; echo "${COMPREPLY[*]}"' x \
		"$S/usr/share/bash-completion/completions/credsign")
	[ "$got" = db-production ] || { echo "  got '$got'"; return 1; }
}
check "the installed completion completes a preset" installed_completion_works

# ---- the installed programs from the stage -----------------------------------------
sbin=$S/usr/sbin
port=$(free_port)
url=https://127.0.0.1:$port
conf=$tmp/credsignd.conf
log=$tmp/credsignd.log
mkdir -p "$tmp/data"
cat > "$conf" <<CONF
server = { listen = "127.0.0.1:$port"; public_base_url = "$url"; node_id = "it-install"; workers = 2;
           presets_file = "$S/usr/share/credsign/presets.conf"; $RUN_AS };
tls = { cert = "$pki/server.pem"; key = "$pki/server.key"; ca = "$pki/ca.pem";
        crl = "$pki/crl.pem"; crl_check = true; };
pkcs11 = { module = "$SOFTHSM"; token_uri = "pkcs11:token=cstest"; pin_file = "$TOKEN_DIR/user.pin";
           signing_key = "pkcs11:token=cstest;object=install-es256"; };
store = { path = "$tmp/data/credsign.db"; };
access = { grants = ( $DEFAULT_GRANTS ); };
CONF
service_files "$tmp" "$tmp/data"

check "the installed credsignd --version" bash -c '"$1" --version | grep -q "^credsignd [0-9]"' x "$sbin/credsignd"
check "the installed credsign-admin generates the signing key" \
	bash -c '"$1" --config "$2" key generate --label install-es256 > "$3"' x "$sbin/credsign-admin" "$conf" "$tmp/key.jwk"
checks_config() {
	service_store # the store credsign-admin made is the network process's (checked as its user)
	"$sbin/credsignd" --check-config "$conf" > "$tmp/check.out" 2>&1
	grep -q "configuration valid" "$tmp/check.out" || { sed 's/^/  /' "$tmp/check.out"; return 1; }
}
check "the installed credsignd --check-config accepts the staged presets, token and key" checks_config

# the installed provider module with the stock openssl command: the public
# key it reads from the token is the one credsign-admin printed
provider_reads_the_key() {
	local module=$S/usr/$libdir/ossl-modules preload
	# a sanitized module needs its runtimes preloaded into openssl
	preload=$(ldd "$module/credsign-pkcs11.so" | awk '/lib(a|ub)san/ { printf "%s%s", sep, $3; sep = ":" }')
	LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 CREDSIGN_PKCS11_MODULE=$SOFTHSM \
		CREDSIGN_PIN_FILE=$TOKEN_DIR/user.pin CREDSIGN_TOKEN_URI="pkcs11:token=cstest" \
		openssl pkey -provider-path "$module" -provider credsign-pkcs11 -provider default \
		-in "pkcs11:token=cstest;object=install-es256" -pubout -outform DER -out "$tmp/pub.der" || return 1
	python3 - "$tmp/pub.der" "$tmp/key.jwk" <<'PY'
import base64, json, sys
der = open(sys.argv[1], "rb").read()
jwk = json.load(open(sys.argv[2]))
b = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
assert der[-65:] == b"\x04" + b(jwk["x"]) + b(jwk["y"]), "the provider's key is not the token key"
PY
}
check "the installed OpenSSL provider reads the token key" provider_reads_the_key

start_installed() {
	service_store # the store credsign-admin made is the network process's
	"$sbin/credsignd" --config "$conf" > "$log" 2>&1 &
	daemon=$!
	pids+=("$daemon")
	# ready when it answers (the listener is bound before start-up ends)
	for _ in $(seq 200); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$pki/ca.pem" \
			--cert "$pki/clients/operator.pem" --key "$pki/clients/operator.key" "$url/healthz")" = 200 ] && return 0
		kill -0 "$daemon" 2> /dev/null || break
		sleep 0.05
	done
	cat "$log"
	return 1
}
check "the installed credsignd starts against SoftHSM2" start_installed

round_trip() {
	local cs=("$S/usr/bin/credsign" --url "$url" --cacert "$pki/ca.pem"
		--cert "$pki/clients/ci-deployer.pem" --key "$pki/clients/ci-deployer.key")
	"${cs[@]}" generate --preset soc2 --project payments --environment staging --certify --format env \
		> "$tmp/gen.env" || return 1
	# shellcheck source=/dev/null
	. "$tmp/gen.env"
	"${cs[@]}" cert get "$CREDSIGN_CERT_ID" --jws > "$tmp/cert.jws" || return 1
	"${cs[@]}" jwks > "$tmp/jwks.json" || return 1
	printf '%s' "$CREDSIGN_CREDENTIAL" > "$tmp/credential"
	"$S/usr/bin/credsign" verify "$tmp/cert.jws" --jwks "$tmp/jwks.json" \
		--credential-file "$tmp/credential" > "$tmp/verify.out" || { cat "$tmp/verify.out"; return 1; }
	grep -q "VERIFIED certificate $CREDSIGN_CERT_ID" "$tmp/verify.out"
}
check "generate + certify with the installed client, verified by the installed credsign verify" round_trip

check "SIGHUP (ExecReload) reloads the client CA and CRL" \
	bash -c 'kill -HUP "$1" && for _ in $(seq 50); do grep -q "client CA and CRL reloaded" "$2" && exit 0; sleep 0.1; done; exit 1' \
	x "$daemon" "$log"
stops_cleanly() {
	kill -TERM "$daemon" && wait "$daemon"
}
check "SIGTERM stops the installed daemon with status 0" stops_cleanly

# ---- hsm-setup/install-production --root STAGE2 --user nobody --key-user daemon ------
user=nobody
group=$(id -gn "$user")
key_user=daemon # an existing second account (--root creates none)
key_group=$(id -gn "$key_user")
pin_value="pin-$RANDOM$RANDOM$RANDOM"
(umask 077 && printf '%s\n' "$pin_value" > "$tmp/pin.src")
production() {
	"$src/hsm-setup/install-production" --build "$BUILD" --root "$S2" --user "$user" --key-user "$key_user" "$@" \
		> "$tmp/prod.out" 2>&1 ||
		{ cat "$tmp/prod.out"; return 1; }
	! grep -qF "$pin_value" "$tmp/prod.out" || { echo "  the PIN was printed"; return 1; }
}
check "install-production --root --user $user --key-user $key_user --pin-file" production --pin-file "$tmp/pin.src"

modes() { # PATH MODE OWNER:GROUP...
	local got
	while [ $# -gt 0 ]; do
		got=$(stat -c '%a %U:%G' "$S2/$1" 2>&1)
		[ "$got" = "$2 $3" ] || { echo "  /$1: $got, want $2 $3"; return 1; }
		shift 3
	done
}
layout=(etc/credsign 750 "root:$group" etc/credsign/tls 750 "root:$group"
	var/lib/credsign 700 "$user:$group" etc/credsign/token.pin 600 "$key_user:$key_group"
	etc/credsign/credsignd.conf 640 "root:$group" lib/systemd/system/credsignd.service 644 root:root
	usr/sbin/credsignd 755 root:root)
check "directories, PIN file, configuration and unit have their modes and owners" modes "${layout[@]}"
check "the PIN file holds the PIN given" cmp -s "$tmp/pin.src" "$S2/etc/credsign/token.pin"
check "the configuration names the installed presets" \
	grep -qx '  presets_file = "/usr/share/credsign/presets.conf";' "$S2/etc/credsign/credsignd.conf"
check "the configuration switches the network process to $user (server.user)" \
	grep -qx "  user = \"$user\";" "$S2/etc/credsign/credsignd.conf"

unit_is_right() {
	local unit=$S2/lib/systemd/system/credsignd.service line
	for line in "User=$key_user" "Group=$key_group" "SupplementaryGroups=$group" "Type=notify" \
		"ExecStart=/usr/sbin/credsignd --config /etc/credsign/credsignd.conf" \
		'ExecReload=/bin/kill -HUP $MAINPID' NoNewPrivileges=yes ProtectSystem=strict \
		"CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_KILL" \
		"AmbientCapabilities=CAP_SETUID CAP_SETGID CAP_SETPCAP CAP_KILL" "SystemCallFilter=@setuid capset" \
		ReadWritePaths=/var/lib/credsign PrivateTmp=yes; do
		grep -qxF "$line" "$unit" || { echo "  no line '$line'"; return 1; }
	done
	# systemd would give /var/lib/credsign to User= (the key account)
	! grep -q '^StateDirectory' "$unit" || { echo "  a StateDirectory= line"; return 1; }
	! grep -q '@[A-Z]*@' "$unit" || { echo "  a placeholder is left"; return 1; }
	# systemd parses every line (it only warns, so read what it says)
	if command -v systemd-analyze > /dev/null; then
		sed "s|^ExecStart=/usr/sbin/|ExecStart=$S2/usr/sbin/|" "$unit" > "$tmp/credsignd.service"
		MANPATH=$S2/usr/share/man systemd-analyze verify "$tmp/credsignd.service" > "$tmp/analyze.out" 2>&1
		! grep -Ei "fail|unknown|ignoring|not executable|invalid" "$tmp/analyze.out" ||
			{ echo "  systemd-analyze verify complains"; return 1; }
	fi
	# installed, not enabled
	[ -z "$(find "$S2" -path '*/systemd/system/*.wants*')" ] || { echo "  the unit was enabled"; return 1; }
}
check "the systemd unit runs the daemon as $key_user (network process $user), hardened, not enabled" unit_is_right

# The daemon's own checks agree: the key account as the unit starts it
# (uid and group $key_user, supplementary group $group, CAP_SETUID,
# CAP_SETGID and CAP_SETPCAP ambient) passes --check-config on the
# production layout (paths moved into the stage, TLS material from the dev
# PKI, 0640 root:GROUP, the key root:KEYGROUP); neither root nor the network
# account owns the PIN.
as_unit() {
	setpriv --reuid "$key_user" --regid "$key_group" --groups "$group" \
		--inh-caps +setuid,+setgid,+setpcap --ambient-caps +setuid,+setgid,+setpcap "$@"
}
service_view() {
	local c=$S2/etc/credsign/staged.conf f
	for f in server.pem:server.pem ca.pem:clients-ca.pem crl.pem:clients-ca.crl.pem; do
		install -m 0640 -o root -g "$group" "$pki/${f%%:*}" "$S2/etc/credsign/tls/${f#*:}"
	done
	install -m 0644 -o "$user" -g "$group" "$pki/server.key" "$S2/etc/credsign/tls/server.key"
	# install-production gives an existing TLS key to the key account
	production < /dev/null || return 1
	modes etc/credsign/tls/server.key 640 "root:$key_group" || return 1
	sed -e "s|\"/etc/credsign/|\"$S2/etc/credsign/|" -e "s|\"/var/lib/credsign/|\"$S2/var/lib/credsign/|" \
		-e "s|\"/usr/share/credsign/|\"$S2/usr/share/credsign/|" \
		-e "s|^\( *module = \)\"[^\"]*\";|\1\"$SOFTHSM\";|" \
		"$S2/etc/credsign/credsignd.conf" > "$c"
	chown "root:$group" "$c"
	chmod 0640 "$c"
	local offline=()
	"$S2/usr/sbin/credsignd" --help 2>&1 | grep -q -- --offline && offline=(--offline)
	as_unit "$S2/usr/sbin/credsignd" "${offline[@]}" --check-config "$c" > "$tmp/as-key.out" 2>&1 ||
		{ sed 's/^/  as '"$key_user"': /' "$tmp/as-key.out"; return 1; }
	if "$S2/usr/sbin/credsignd" "${offline[@]}" --check-config "$c" > "$tmp/as-root.out" 2>&1; then
		echo "  root passed the PIN file's owner check"
		return 1
	fi
	grep -q "token\.pin.*owned by" "$tmp/as-root.out" || { sed 's/^/  as root: /' "$tmp/as-root.out"; return 1; }
	# the network account cannot read the PIN file, nor the TLS key
	if setpriv --reuid "$user" --regid "$group" --clear-groups cat "$S2/etc/credsign/token.pin" \
		"$S2/etc/credsign/tls/server.key" > /dev/null 2>&1; then
		echo "  $user reads the PIN file or the TLS key"
		return 1
	fi
	rm -f "$c" "$S2"/etc/credsign/tls/*
}
check "the key account's --check-config (the unit's capabilities) passes on the production layout (root's fails on the PIN owner)" service_view

idempotent() {
	echo "# the operator's edit" >> "$S2/etc/credsign/credsignd.conf"
	local new="pin-again-$RANDOM$RANDOM"
	# the PIN from standard input
	printf '%s\n' "$new" | production --pin-file - || return 1
	grep -qF "$new" "$tmp/prod.out" && { echo "  the PIN was printed"; return 1; }
	[ "$(cat "$S2/etc/credsign/token.pin")" = "$new" ] || { echo "  the new PIN was not written"; return 1; }
	# no PIN given: the PIN file is kept
	production < /dev/null || return 1
	[ "$(cat "$S2/etc/credsign/token.pin")" = "$new" ] || { echo "  the PIN file was changed"; return 1; }
	tail -n 1 "$S2/etc/credsign/credsignd.conf" | grep -q "the operator's edit" ||
		{ echo "  the configuration was overwritten"; return 1; }
	modes "${layout[@]}" || return 1
	[ -z "$(find "$S2/etc/credsign" -name '.*' -o -name '*.tmp')" ] || { echo "  temporary files left"; return 1; }
}
check "install-production again: PIN from stdin, edited configuration kept, same modes" idempotent

refuses_missing_user() {
	local ghost=credsign-test-no-such-user
	! id "$ghost" > /dev/null 2>&1 || return 1
	! "$src/hsm-setup/install-production" --build "$BUILD" --root "$S2" --user "$ghost" > "$tmp/ghost.out" 2>&1 &&
		grep -q "user '$ghost' does not exist" "$tmp/ghost.out" && ! id "$ghost" > /dev/null 2>&1
}
check "with --root, a missing user is refused, not created" refuses_missing_user

refuses_one_account() {
	! "$src/hsm-setup/install-production" --build "$BUILD" --root "$S2" --user "$user" --key-user "$user" \
		> "$tmp/one.out" 2>&1 && grep -q "must be two accounts" "$tmp/one.out"
}
check "one account for both processes is refused" refuses_one_account

refuses_empty_pin() {
	! production --pin-file - < /dev/null > /dev/null 2>&1 && grep -q "the PIN is empty" "$tmp/prod.out"
}
check "an empty PIN is refused" refuses_empty_pin

finish
