#!/usr/bin/env bash
# credsignd against tokens that differ from SoftHSM2 (docs/hsm.md), each
# imitated by tests/fault/fault_pkcs11.c in front of SoftHSM2. For every mode
# the whole appliance round trip runs through the daemon over mTLS: a
# credential generated, certified, and the certificate verified against the
# daemon's JWKS. Modes: a module that needs C_Initialize arguments, 2-byte
# key ids, no CKM_EC_KEY_PAIR_GEN, DER signatures, no C_CopyObject, no login,
# one session per token, sessions that die when idle (until the module is
# re-initialised) and a burst of requests after they died, the curve as a
# name and as explicit parameters, keys as other tools make them (a login
# before each use, CKA_ALWAYS_AUTHENTICATE; halves labelled apart; only the
# private object; labels longer than 64 bytes), and the token served over
# p11-kit remoting. Where a token cannot serve (no CKM_ECDSA; a login and no
# PIN; arguments missing; an always-authenticate key without a PIN) start
# fails with a message that names the cause; key generation names a refused
# template.
#
#   hsm_modes_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE FAULT_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
FAULT=${4:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token modes || exit 1

export CREDSIGN_FAULT_REAL_MODULE=$SOFTHSM
control=$STATE/fault-modes.control
export CREDSIGN_FAULT_CONTROL=$control
pki=$STATE/pki
clients=$pki/clients
KEY="pkcs11:token=cstest;object=hsm-modes"
started=$(date +%s)

# mode_setup NAME RULES [PKCS11_SETTINGS] [SIGNING_KEY]: the fault module's
# rules, and a configuration for this mode in $conf (a PIN file unless
# PKCS11_SETTINGS says otherwise through NO_PIN=1).
mode_setup() {
	name=$1
	work=$STATE/modes-$name
	rm -rf "$work"
	mkdir -p "$work/data"
	chmod 700 "$work"
	printf "$2" > "$control"
	port=$(free_port)
	url=https://127.0.0.1:$port
	conf=$work/credsignd.conf
	log=$work/credsignd.log
	db=$work/data/credsign.db
	local pin="pin_file = \"$TOKEN_DIR/user.pin\";"
	[ "${NO_PIN:-0}" = 1 ] && pin=""
	cat > "$conf" <<CONF
server = { listen = "127.0.0.1:$port"; public_base_url = "$url"; node_id = "modes-$name";
           workers = 2; presets_file = "$src/conf/presets.conf"; $RUN_AS };
tls = { cert = "$pki/server.pem"; key = "$pki/server.key"; ca = "$pki/ca.pem";
        crl = "$pki/crl.pem"; crl_check = true; };
pkcs11 = { module = "$FAULT"; token_uri = "pkcs11:token=cstest"; $pin
           signing_key = "${4:-$KEY}"; validation = { program = "none"; }; ${3:-} };
store = { path = "$db"; };
log = { level = "info"; };
access = { grants = ( $DEFAULT_GRANTS ); };
${MODE_EXTRA:-}
CONF
	admin=(as_admin "$BUILD/bin/credsign-admin" --config "$conf")
	service_files "$work" "$work/data"
}

# no sanitizer report in a program's output (the ASan build)
clean() { ! grep -q "Sanitizer" "$1"; }

# round_trip: generate -> certify -> verify against the JWKS, over mTLS
round_trip() {
	local got sid
	got=$(call ci-deployer POST /api/generate '{"project":"payments","environment":"production","preset":"soc2"}')
	[[ "$got" == "200 "* ]] || { echo "  generate: ${got:0:300}"; return 1; }
	sid=$(json_field "${got#200 }" generation_session_id)
	got=$(call ci-deployer POST /api/generate-certificate "{\"generation_session_id\":\"$sid\"}")
	[[ "$got" == "201 "* ]] || { echo "  certify: ${got:0:300}"; return 1; }
	json_field "${got#201 }" certificate > "$work/cert.jws"
	call auditor GET /.well-known/jwks.json | cut -d' ' -f2- > "$work/jwks.json"
	"$BUILD/bin/credsign" verify "$work/cert.jws" --jwks "$work/jwks.json" > "$work/verify.out" ||
		{ cat "$work/verify.out"; return 1; }
}

# serve: start the daemon on $conf, one round trip, stop it cleanly
serve() {
	start_daemon || return 1
	round_trip || { tail -5 "$log"; stop_daemon; return 1; }
	stop_daemon && clean "$log"
}

# refused_at_start PATTERN: credsignd exits at start, its log naming the cause
refused_at_start() {
	if timeout 60 "$BUILD/bin/credsignd" --config "$conf" > "$log" 2>&1; then
		echo "  credsignd started"
		return 1
	fi
	grep -q -- "$1" "$log" || { echo "  expected '$1' in:"; tail -5 "$log"; return 1; }
	clean "$log"
}

# the key most modes sign with, made on the token as it is
mode_setup plain ''
"${admin[@]}" key generate --label hsm-modes > /dev/null 2> "$work/gen.err" ||
	{ cat "$work/gen.err"; exit 1; }

# ---- C_Initialize arguments --------------------------------------------------------
init_args_needed() {
	mode_setup init-args-missing 'init-args configdir=/etc/hsm-modes\n'
	refused_at_start 'CKR_ARGUMENTS_BAD.*set pkcs11.init_args' || return 1
	mode_setup init-args 'init-args configdir=/etc/hsm-modes\n' 'init_args = "configdir=/etc/hsm-modes";'
	"$BUILD/bin/credsignd" --check-config "$conf" > /dev/null || return 1
	serve
}
check "a module that needs C_Initialize arguments: refused without pkcs11.init_args (named), serves with them" \
	init_args_needed

proxy_refused() {
	mode_setup proxy '' 'init_args = "x";'
	sed -i "s|module = \"$FAULT\";|module = \"/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so\";|" "$conf"
	if "$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1; then return 1; fi
	grep -q "setting 'pkcs11.module': '.*p11-kit-proxy.so' is p11-kit's proxy module.*registered module's name" \
		"$work/check.out" || { cat "$work/check.out"; return 1; }
	sed -i "s|module = \"/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so\";|module = \"softhsm2\";|" "$conf"
	if "$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1; then return 1; fi
	grep -q "setting 'pkcs11.init_args': only for a module given by path" "$work/check.out"
}
check "--check-config refuses p11-kit-proxy.so (use the registered name) and init_args with a module name" proxy_refused

# ---- short key ids ------------------------------------------------------------------
short_ids() {
	mode_setup short-ids 'id-max 2\n' '' "pkcs11:token=cstest;object=hsm-short"
	"${admin[@]}" key generate --label hsm-short > /dev/null 2> "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	grep -q "refused the key with a 4-byte CKA_ID (CKR_ATTRIBUTE_VALUE_INVALID); trying 2 bytes" "$work/gen.err" ||
		{ cat "$work/gen.err"; return 1; }
	# --id: used as given, refused when the token keeps fewer bytes
	if "${admin[@]}" key generate --label hsm-short-3 --id 0a0b0c > /dev/null 2> "$work/gen3.err"; then return 1; fi
	grep -q "refused the key with a 3-byte CKA_ID" "$work/gen3.err" || { cat "$work/gen3.err"; return 1; }
	"${admin[@]}" key generate --label hsm-short-id --id "$short_id" > /dev/null || return 1
	serve || return 1
	# the key named by its 2-byte id alone
	mode_setup short-ids-by-id 'id-max 2\n' '' "pkcs11:token=cstest;id=%${short_id:0:2}%${short_id:2:2}"
	serve
}
short_id=0a0b # the token is made afresh for each run
check "a token that keeps 2-byte CKA_IDs: key generate falls back 16 -> 8 -> 4 -> 2, --id HEX, both keys serve" short_ids

# ---- mechanisms ------------------------------------------------------------------------
no_key_generation() {
	mode_setup no-keygen 'no-mechanism CKM_EC_KEY_PAIR_GEN\n'
	if "${admin[@]}" key generate --label never > /dev/null 2> "$work/gen.err"; then return 1; fi
	grep -q "token lacks CKM_EC_KEY_PAIR_GEN (generate key pair)" "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	# token info lists it, and succeeds: credsignd needs only CKM_ECDSA
	"${admin[@]}" token info > "$work/info.json" 2> "$work/info.err" || { cat "$work/info.err"; return 1; }
	python3 - "$work/info.json" <<'PY' || return 1
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["mechanisms"]}
assert m["CKM_ECDSA"]["usable"] and m["CKM_ECDSA"]["sign"], m
assert not m["CKM_EC_KEY_PAIR_GEN"]["listed"], m
assert m["CKM_EC_KEY_PAIR_GEN"]["problem"] == "token lacks CKM_EC_KEY_PAIR_GEN (generate key pair)", m
PY
	serve
}
check "a token without CKM_EC_KEY_PAIR_GEN: key generate and token info name it; the daemon serves" no_key_generation

no_ecdsa() {
	mode_setup no-ecdsa 'no-mechanism CKM_ECDSA\n'
	if "${admin[@]}" token info > "$work/info.json" 2> "$work/info.err"; then return 1; fi
	grep -q "token lacks CKM_ECDSA (sign)" "$work/info.err" || { cat "$work/info.err"; return 1; }
	refused_at_start "token lacks CKM_ECDSA (sign)"
}
check "a token without CKM_ECDSA: token info fails naming it, credsignd refuses to start naming it" no_ecdsa

# ---- encodings and missing functions ---------------------------------------------------
der_signatures() { mode_setup der 'der-signature\n' && serve; }
check "a token that returns DER signatures" der_signatures

no_copy_object() { mode_setup no-copy 'C_CopyObject 0x54\n' && serve; }
check "a token without C_CopyObject" no_copy_object

curve_as_name() { mode_setup ec-printable 'ec-params printable\n' && serve; }
check "CKA_EC_PARAMS as the curve's name (PrintableString prime256v1)" curve_as_name

curve_explicit() { mode_setup ec-explicit 'ec-params explicit\n' && serve; }
check "CKA_EC_PARAMS as explicit P-256 parameters" curve_explicit

# ---- login -------------------------------------------------------------------------------
no_login() {
	local why="requires a login (CKF_LOGIN_REQUIRED) and no PIN source is configured: set pkcs11.pin_file"
	NO_PIN=1 mode_setup no-login-needed ''
	if "$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1; then return 1; fi
	grep -q "$why" "$work/check.out" || { cat "$work/check.out"; return 1; }
	refused_at_start "$why" || return 1
	NO_PIN=1 mode_setup no-login "no-login $TOKEN_DIR/user.pin\n"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	CREDSIGN_FAULT_COUNTS=$work/counts serve || return 1
	grep -Eq '^C_Login +0$' "$work/counts" || { grep C_Login "$work/counts"; return 1; }
	# a PIN configured all the same: not used, and the log says so
	mode_setup no-login-pin "no-login $TOKEN_DIR/user.pin\n"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	grep -q "does not require a login (no CKF_LOGIN_REQUIRED): not logging in, the PIN in $TOKEN_DIR/user.pin is not used" \
		"$work/check.out" || { cat "$work/check.out"; return 1; }
}
check "no PIN source: refused (naming pkcs11.pin_file) by a token that needs a login; a token without login serves, C_Login never called; a PIN it does not need is logged as not used" \
	no_login

# ---- sessions ------------------------------------------------------------------------------
one_session() {
	mode_setup one-session 'session-cap 1\n' 'sessions = 4;'
	start_daemon || return 1
	local p ok=1 trips=()
	for i in 1 2 3; do
		(work=$work/trip-$i; mkdir -p "$work"; round_trip) &
		trips+=($!)
	done
	for p in "${trips[@]}"; do wait "$p" || ok=0; done
	stop_daemon && clean "$log" && [ $ok = 1 ]
}
check "one session per token (sessions = 4 configured): three round trips at once" one_session

idle_sessions_die() {
	# no checkpoint (signed every 5 s) may touch the token while it idles
	MODE_EXTRA='audit = { checkpoint_seconds = 3600; };' \
		mode_setup idle 'init-args slot=0\nidle-timeout 600\n' 'init_args = "slot=0";'
	start_daemon || return 1
	round_trip || { stop_daemon; return 1; }
	sleep 1.2 # the token's sessions expire
	round_trip || { tail -5 "$log"; stop_daemon; return 1; }
	grep -q 'token module re-initialised; token available again' "$log" || { stop_daemon; return 1; }
	stop_daemon && clean "$log"
}
check "sessions that die after inactivity until C_Finalize/C_Initialize: recovered (with the init arguments)" \
	idle_sessions_die

# the review's case: a slow token allowing 2 sessions, 8 configured; after
# the idle expiry 6 clients at once, whose handshakes and requests wait for
# the one re-initialisation instead of failing
burst_after_idle() {
	MODE_EXTRA='audit = { checkpoint_seconds = 3600; };' \
		mode_setup burst 'delay-ms 20\nsession-cap 2\nidle-timeout 1500\n' 'sessions = 8;'
	start_daemon || return 1
	local i p ok=1 trips=()
	for i in 1 2 3 4 5 6; do
		(work=$work/seq-$i; mkdir -p "$work"; round_trip) || ok=0
	done
	sleep 2 # the token's sessions expire
	for i in 1 2 3 4 5 6; do
		(work=$work/trip-$i; mkdir -p "$work"; round_trip) &
		trips+=($!)
	done
	for p in "${trips[@]}"; do wait "$p" || ok=0; done
	grep -q 'token module re-initialised; token available again' "$log" || { echo "  not re-initialised"; ok=0; }
	[ $ok = 1 ] || tail -5 "$log"
	stop_daemon && clean "$log" && [ $ok = 1 ]
}
check "a burst after idle expiry (20 ms a call, 2 sessions allowed, 8 configured): 6 round trips at once all succeed" \
	burst_after_idle

# ---- keys as other tools make them --------------------------------------------------------
always_authenticate() {
	local key="pkcs11:token=cstest;object=hsm-always-auth"
	mode_setup always-auth 'always-authenticate\n' '' "$key"
	"${admin[@]}" key generate --label hsm-always-auth > /dev/null 2> "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	mode_setup always-auth '' '' "$key"
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	serve || return 1
	if grep -E 're-initialised|sessions lost|NOT_LOGGED_IN' "$log"; then return 1; fi
	# no PIN source to log in with before each signature: refused at start
	NO_PIN=1 mode_setup always-auth-no-pin "no-login $TOKEN_DIR/user.pin\n" '' "$key"
	refused_at_start "setting 'pkcs11.signing_key'.*CKA_ALWAYS_AUTHENTICATE" || return 1
	# a key that is found but will not sign: start-up signs once, and stops
	# before the store exists
	mode_setup never-signs 'C_Sign 0x101\n'
	refused_at_start "pkcs11.signing_key.*the key is in the token but does not sign: token session is not logged in (C_Sign: CKR_USER_NOT_LOGGED_IN)" ||
		return 1
	[ ! -e "$db" ] || { echo "  the store was created"; return 1; }
	if grep -E 're-initialised|sessions lost' "$log"; then return 1; fi
}
check "a key with CKA_ALWAYS_AUTHENTICATE: a CKU_CONTEXT_SPECIFIC login per signature serves it, no recovery; without a PIN start-up refuses it naming the attribute; a key that does not sign stops start-up (one test signature), no recovery loop" \
	always_authenticate

public_half() {
	local key="pkcs11:token=cstest;object=hsm-dl"
	mode_setup dl 'public-label hsm-dl-pub\n' '' "$key"
	"${admin[@]}" key generate --label hsm-dl > /dev/null 2> "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	mode_setup dl '' '' "$key"
	serve || return 1
	mode_setup no-pub 'no-public-key\n' '' "$key"
	if "$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1; then return 1; fi
	grep -q "$key: private key found, no matching public key" "$work/check.out" || { cat "$work/check.out"; return 1; }
	mode_setup no-pub-spki 'no-public-key\npublic-on-private spki\n' '' "$key"
	serve
}
check "the public half paired by CKA_ID (labels dl and dl-pub), or read from the private key (CKA_PUBLIC_KEY_INFO); none: named" \
	public_half

long_label() {
	local label
	label=hsm-long-$(printf 'L%.0s' $(seq 80))
	mode_setup long '' '' "pkcs11:token=cstest;object=$label"
	"${admin[@]}" key generate --label "$label" > /dev/null 2> "$work/gen.err" || { cat "$work/gen.err"; return 1; }
	"$BUILD/bin/credsignd" --check-config "$conf" > "$work/check.out" 2>&1 || { cat "$work/check.out"; return 1; }
	if "${admin[@]}" key generate --label "$(printf 'M%.0s' $(seq 256))" > /dev/null 2> "$work/gen.err"; then return 1; fi
	grep -q -- "--label takes 1 to 255 bytes (this one has 256)" "$work/gen.err" || { cat "$work/gen.err"; return 1; }
}
check "a label of 89 bytes: generated, found and signing (--check-config); 256 bytes: the limit named" long_label

template_refused() {
	mode_setup template 'C_GenerateKeyPair 0xd1\n'
	if "${admin[@]}" key generate --label hsm-never > /dev/null 2> "$work/gen.err"; then return 1; fi
	grep -q "token refused the key template (C_GenerateKeyPair: CKR_TEMPLATE_INCONSISTENT); the CKA_ID length is not the cause" \
		"$work/gen.err" || { cat "$work/gen.err"; return 1; }
	if "${admin[@]}" key generate --label hsm-never --id 0102 > /dev/null 2> "$work/gen2.err"; then return 1; fi
	grep -q "token refused the key template (C_GenerateKeyPair: CKR_TEMPLATE_INCONSISTENT); a 2-byte CKA_ID is not the cause" \
		"$work/gen2.err" || { cat "$work/gen2.err"; return 1; }
	if grep -q "shorter --id" "$work/gen2.err"; then cat "$work/gen2.err"; return 1; fi
}
check "a template the token refuses (CKR_TEMPLATE_INCONSISTENT): named as such, not blamed on CKA_ID" template_refused

# ---- p11-kit remoting -------------------------------------------------------------------------
# the token served by `p11-kit server` on a socket; the daemon loads
# p11-kit-client.so and finds it through P11_KIT_SERVER_ADDRESS
remoting() {
	local client server
	client=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
	[ -f "$client" ] || { echo "  $client missing: run hsm-setup/install-deps"; return 1; }
	mode_setup remote ''
	sed -i "s|module = \"$FAULT\";|module = \"$client\";|" "$conf"
	p11-kit server -f --provider "$SOFTHSM" -n "$work/p11.sock" "pkcs11:token=cstest" > "$work/server.out" 2>&1 &
	server=$!
	pids+=($server)
	for _ in $(seq 100); do [ -S "$work/p11.sock" ] && break; sleep 0.05; done
	P11_KIT_SERVER_ADDRESS=unix:path=$work/p11.sock serve
	local rc=$?
	kill "$server" 2> /dev/null
	wait "$server" 2> /dev/null
	return $rc
}
check "over p11-kit remoting (p11-kit server, p11-kit-client.so)" remoting

: > "$control"
echo "  $(($(date +%s) - started)) s"
finish
