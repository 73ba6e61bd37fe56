#!/usr/bin/env bash
# The secrets-manager hand-off (docs/integrations.md): credsign generate
# --certify --format k8s-secret | vault-kv against a real daemon. Each
# output is parsed (python3 yaml.safe_load, json), compared with the
# certificate the daemon serves (id, URL, preset, certified_at), and its
# credential checked against the certificate's commitment (credsign verify
# --credential-file). Also: the option checks (exit 2, no request made),
# nothing printed when certification is refused, and the Terraform
# external-program recipe of docs/integrations.md run as written (its
# output: one flat JSON object of strings).
#
#   handoff_test.sh BUILD_DIR STATE_DIR SOFTHSM_MODULE
BUILD=${1:?}
STATE=${2:?}
SOFTHSM=${3:?}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
it_token handoff || exit 1

# web-deployer's grant pays for one request a day, and so does a generator
# grant of the auditor's: the generate of each is admitted, the certify
# after it refused (429)
GRANTS='
    { identity = "spiffe://credsign.test/ci-deployer"; role = "generator";
      projects = [ "payments" ]; environments = [ "production", "staging" ]; },
    { identity = "spiffe://credsign.test/web-deployer"; role = "generator";
      projects = [ "web" ]; environments = [ "*" ]; rate = 0.00002; burst = 1; },
    { identity = "spiffe://credsign.test/auditor"; role = "auditor"; projects = [ "*" ]; },
    { identity = "spiffe://credsign.test/auditor"; role = "generator";
      projects = [ "web" ]; environments = [ "*" ]; rate = 0.00002; burst = 1; },
    { identity = "spiffe://credsign.test/operator"; role = "operator"; }'
it_setup handoff || exit 1
export CREDSIGN_URL=$url CREDSIGN_CACERT=$pki/ca.pem
export CREDSIGN_CERT=$clients/ci-deployer.pem CREDSIGN_KEY=$clients/ci-deployer.key
cs=$BUILD/bin/credsign
checker=$src/tests/integration/handoff_check.py
GEN=(generate --project payments --environment production --system db-prod --certify)

"$cs" jwks > "$work/jwks.json" || { echo "cannot fetch the JWKS"; exit 1; }

# fetch_cert ID: the certificate (GET /cert/ID, and its JWS) into
# $work/cert.json and $work/cert.jws
fetch_cert() { # fetch_cert ID
	"$cs" cert get "$1" > "$work/cert.json" && "$cs" cert get "$1" --jws > "$work/cert.jws"
}
# verify_credential FILE: the credential in FILE is the one the certificate commits to
verify_credential() {
	"$cs" verify "$work/cert.jws" --jwks "$work/jwks.json" --credential-file "$1" > "$work/verify.out" 2>&1 ||
		{ cat "$work/verify.out"; return 1; }
	# and a different one is not
	printf '%sx' "$(cat "$1")" > "$work/wrong"
	! "$cs" verify "$work/cert.jws" --jwks "$work/jwks.json" --credential-file "$work/wrong" > /dev/null 2>&1
}
yaml_get() { # yaml_get FILE KEY: metadata.annotations[KEY]
	python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["annotations"][sys.argv[2]])' "$1" "$2"
}

# ---- k8s-secret --------------------------------------------------------------------
k8s_secret() { # k8s_secret PRESET [TYPE] [--secret-key K]
	local preset=$1 type=${2:-} key=credential
	shift 2
	[ "${1:-}" = --secret-key ] && key=$2
	"$cs" "${GEN[@]}" --preset "$preset" ${type:+--type "$type"} --format k8s-secret \
		--name db-prod.credentials --namespace payments-prod "$@" > "$work/secret.yaml" || return 1
	local id
	id=$(yaml_get "$work/secret.yaml" credsign.io/cert-id) || return 1
	fetch_cert "$id" || return 1
	python3 "$checker" k8s-secret "$work/secret.yaml" "$work/cert.json" db-prod.credentials payments-prod "$key" \
		"$work/credential" || { cat "$work/secret.yaml"; return 1; }
	verify_credential "$work/credential"
}
check "k8s-secret (soc2): the manifest parses, matches the certificate, the credential verifies" k8s_secret soc2 ''
check "k8s-secret (dod-stig password, symbols) with --secret-key DB_PASSWORD" \
	k8s_secret dod-stig password --secret-key DB_PASSWORD
check "k8s-secret (nist-800-63b passphrase)" k8s_secret nist-800-63b passphrase
# a password of many symbols, several times: YAML quoting round-trips it
symbols_round_trip() {
	for _ in 1 2 3 4 5; do
		k8s_secret pci-dss-4 password --secret-key pw || return 1
	done
}
check "k8s-secret: symbol-laden passwords round-trip through the YAML" symbols_round_trip
# the hex credential (all digits at times) stays a string
check "k8s-secret (hex): every scalar a quoted string" k8s_secret soc2 hex

# ---- vault-kv ----------------------------------------------------------------------
vault_kv() { # vault_kv PRESET [--secret-key K]
	local preset=$1 key=credential
	shift
	[ "${1:-}" = --secret-key ] && key=$2
	"$cs" "${GEN[@]}" --preset "$preset" --format vault-kv "$@" > "$work/kv.json" || return 1
	local id
	id=$(jq -r '.data.data.cert_id' "$work/kv.json") || return 1
	fetch_cert "$id" || return 1
	python3 "$checker" vault-kv "$work/kv.json" "$work/cert.json" "$key" "$work/credential" ||
		{ cat "$work/kv.json"; return 1; }
	verify_credential "$work/credential" || return 1
	# the two request bodies as docs/integrations.md extracts them
	[ "$(jq -c '.data | keys' "$work/kv.json")" = '["data","options"]' ] &&
		[ "$(jq -c '.metadata | keys' "$work/kv.json")" = '["custom_metadata"]' ]
}
check "vault-kv (soc2): the KV v2 bodies match the certificate, the credential verifies" vault_kv soc2
check "vault-kv (pci-dss-4) with --secret-key password" vault_kv pci-dss-4 --secret-key password

# ---- the Terraform external program, as docs/integrations.md writes it -------------
terraform_program() {
	python3 - "$src/docs/integrations.md" "$work/credsign-external.sh" <<'PY' || return 1
import re, sys
doc = open(sys.argv[1]).read()
m = re.search(r"<!-- handoff_test: terraform-external -->\s*```sh\n(.*?)```", doc, re.S)
if not m:
    sys.exit("docs/integrations.md: no terraform-external program block")
open(sys.argv[2], "w").write(m.group(1))
PY
	chmod 755 "$work/credsign-external.sh"
	# Terraform's protocol: the query (a JSON object of strings) on stdin
	echo '{"preset":"pci-dss-4","project":"payments","environment":"production","system":"db-prod"}' |
		PATH=$BUILD/bin:$PATH "$work/credsign-external.sh" > "$work/tf.json" || return 1
	fetch_cert "$(jq -r .cert_id "$work/tf.json")" || return 1
	python3 "$src/tests/integration/handoff_check.py" terraform "$work/tf.json" "$work/cert.json" ||
		{ cat "$work/tf.json"; return 1; }
	jq -j .credential "$work/tf.json" > "$work/credential"
	verify_credential "$work/credential"
}
check "terraform external program (docs): a flat object of strings, the credential verifies" terraform_program

# ---- option checks: usage (2), nothing printed, no request made -----------------------
refused() { # refused WHAT-ON-STDERR ARGS...: exit 2, stdout empty, stderr names it, no request
	local want=$1 before
	shift
	before=$(requests_logged)
	"$cs" "$@" > "$work/ref.out" 2> "$work/ref.err"
	local rc=$?
	[ $rc = 2 ] && [ ! -s "$work/ref.out" ] && grep -q -- "$want" "$work/ref.err" &&
		[ "$(requests_logged)" = "$before" ] ||
		{ echo "  rc=$rc out=$(head -c 200 "$work/ref.out") err=$(cat "$work/ref.err")"; return 1; }
}
P=(generate --preset soc2 --project payments --environment production)
check "k8s-secret without --certify refused" refused "needs --certify" "${P[@]}" --format k8s-secret --name a --namespace b
check "vault-kv without --certify refused" refused "needs --certify" "${P[@]}" --format vault-kv
check "k8s-secret without --name refused" refused "needs --name" "${P[@]}" --certify --format k8s-secret --namespace b
check "k8s-secret without --namespace refused" refused "needs --name" "${P[@]}" --certify --format k8s-secret --name a
check "--name upper case refused" refused "--name must be" "${P[@]}" --certify --format k8s-secret --name Db --namespace b
check "--name with an empty label refused" refused "--name must be" "${P[@]}" --certify --format k8s-secret --name a..b --namespace b
check "--name ending in '-' refused" refused "--name must be" "${P[@]}" --certify --format k8s-secret --name a- --namespace b
check "--name of 254 characters refused" refused "--name must be" "${P[@]}" --certify --format k8s-secret \
	--name "$(printf 'a%.0s' $(seq 254))" --namespace b
check "--namespace with a dot refused" refused "--namespace must be" "${P[@]}" --certify --format k8s-secret --name a --namespace a.b
check "--namespace of 64 characters refused" refused "--namespace must be" "${P[@]}" --certify --format k8s-secret \
	--name a --namespace "$(printf 'a%.0s' $(seq 64))"
check "--secret-key '..x' refused" refused "--secret-key must be" "${P[@]}" --certify --format k8s-secret --name a --namespace b --secret-key ..x
check "--secret-key with '/' refused" refused "--secret-key must be" "${P[@]}" --certify --format vault-kv --secret-key a/b
check "vault-kv --secret-key cert_id refused" refused "collide" "${P[@]}" --certify --format vault-kv --secret-key cert_id
check "--name with --format env refused" refused "are for --format k8s-secret" "${P[@]}" --certify --format env --name a
check "--namespace with vault-kv refused" refused "are for --format k8s-secret" "${P[@]}" --certify --format vault-kv --namespace a
check "--secret-key with json refused" refused "is for --format" "${P[@]}" --certify --secret-key k
check "an unknown format refused" refused "json|env|raw|k8s-secret|vault-kv" "${P[@]}" --certify --format yaml
# the names at their limits pass the checks (253 / 63 characters)
limits_accepted() {
	local name ns
	name=$(printf 'a%.0s' $(seq 63)).$(printf 'b%.0s' $(seq 63)).$(printf 'c%.0s' $(seq 63)).$(printf 'd%.0s' $(seq 61))
	ns=$(printf 'n%.0s' $(seq 63))
	[ ${#name} = 253 ] || return 1
	"$cs" "${GEN[@]}" --preset soc2 --format k8s-secret --name "$name" --namespace "$ns" --secret-key a.B-c_9 \
		> "$work/limits.yaml" || return 1
	fetch_cert "$(yaml_get "$work/limits.yaml" credsign.io/cert-id)" &&
		python3 "$checker" k8s-secret "$work/limits.yaml" "$work/cert.json" "$name" "$ns" a.B-c_9 "$work/credential"
}
check "a 253-character name, 63-character namespace and key a.B-c_9 accepted" limits_accepted
# env stays as it was
env_unchanged() {
	"$cs" "${GEN[@]}" --preset soc2 --format env > "$work/gen.env" || return 1
	grep -q "^CREDSIGN_CREDENTIAL=" "$work/gen.env" && grep -q "^CREDSIGN_CERT_URL='$url/cert/" "$work/gen.env"
}
check "--format env unchanged" env_unchanged

# ---- certification refused: nothing printed -------------------------------------
not_certified() { # not_certified IDENTITY ARGS...
	local who=$1
	shift
	CREDSIGN_CERT=$clients/$who.pem CREDSIGN_KEY=$clients/$who.key \
		"$cs" generate --preset soc2 --project web --environment production --certify "$@" \
		> "$work/nc.out" 2> "$work/nc.err"
	local rc=$?
	[ $rc = 1 ] && [ ! -s "$work/nc.out" ] && grep -q "NOT certified" "$work/nc.err" &&
		grep -q "HTTP 429" "$work/nc.err" || { echo "  rc=$rc out=$(cat "$work/nc.out") err=$(cat "$work/nc.err")"; return 1; }
}
check "k8s-secret: certification refused (429) -> nothing printed, exit 1" \
	not_certified web-deployer --format k8s-secret --name a --namespace b
check "vault-kv: certification refused (429) -> nothing printed, exit 1" not_certified auditor --format vault-kv

finish
