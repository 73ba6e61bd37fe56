#!/usr/bin/env bash
# credsign verify-signature, offline, on signatures the signer made in a
# SoftHSM2 token (cs_signer through sigformat.h: sigformat_test --fixtures
# writes a JWS, an expired JWS, a DSSE envelope, a digest signature in DER,
# base64 and base64url, and JWKS documents): the good ones verify (exit 0,
# "VERIFIED ..."), tampered JWS/DSSE/digest signatures, a compromised key,
# an unknown kid and an expired JWS are refused with
# "NOT VERIFIED (CODE): ..." and exit 1; usage errors exit 2. A verified
# signature names signed_sha256 (the signed bytes' SHA-256, as the record
# and the audit entry); a JWS whose typ is credsign's own (also as
# "application/credsign-...") is refused; a kid the JWKS does not list adds
# the hint to fetch the JWKS again; a JWKS whose profile also signs digests,
# or whose entry of the key lists digest in its formats_signed (the key has
# signed digests), adds a caution to a verified JWS or DSSE envelope. The digest
# signature file is also checked by `openssl dgst -verify`, and the usage
# rules of `credsign sign` and `credsign signature get|find` are checked
# (no daemon needed for them).
#
#   sign_verify.sh CREDSIGN SIGFORMAT_TEST TOKEN_DIR SOFTHSM2_MODULE SOURCE_DIR
set -uo pipefail
credsign=$(realpath "${1:?usage: sign_verify.sh CREDSIGN SIGFORMAT_TEST TOKEN_DIR MODULE SOURCE_DIR}")
signer=$(realpath "${2:?}")
token_dir=${3:?}
module=${4:?}
src=$(realpath "${5:?}")
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset CREDSIGN_URL CREDSIGN_CACERT CREDSIGN_CA CREDSIGN_CERT CREDSIGN_KEY

rm -rf "$token_dir"
"$src/hsm-setup/token-init" "$token_dir" cstest > /dev/null || { echo "not ok - token-init"; exit 1; }
token_dir=$(realpath "$token_dir")
fx=$tmp/fx
mkdir -p "$fx"
SOFTHSM2_CONF=$token_dir/softhsm2.conf CREDSIGN_TEST_TOKEN_DIR=$token_dir CREDSIGN_TEST_MODULE=$module \
	"$signer" --fixtures "$fx" || { echo "not ok - the signer wrote the fixtures"; exit 1; }
cd "$tmp" || exit 1

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok - $what"
	else
		failed=$((failed + 1))
		echo "not ok - $what"
		sed 's/^/    /' out.txt err.txt 2> /dev/null
	fi
}
run() { # run WANT_RC ARGS...: credsign ARGS, its exit status WANT_RC
	local want=$1 rc=0
	shift
	"$credsign" "$@" > out.txt 2> err.txt || rc=$?
	[ "$rc" -eq "$want" ] || { echo "  credsign $*: exit $rc, want $want"; return 1; }
}
verified() { # verified WHAT ARGS...: exit 0, "VERIFIED WHAT", the key named, nothing on stderr
	local what=$1
	shift
	run 0 verify-signature "$@" && grep -q "^VERIFIED $what\$" out.txt && grep -q "signing key:" out.txt &&
		[ ! -s err.txt ]
}
refused() { # refused CODE ARGS...: exit 1 and one "credsign: NOT VERIFIED (CODE): ..."
	local code=$1
	shift
	run 1 verify-signature "$@" || return 1
	grep -q "^credsign: NOT VERIFIED ($code): " err.txt || { echo "  no \"NOT VERIFIED ($code)\""; return 1; }
	[ "$(grep -c "NOT VERIFIED" err.txt)" -eq 1 ] || { echo "  not reported exactly once"; return 1; }
	! grep -q "^VERIFIED" out.txt || { echo "  VERIFIED printed"; return 1; }
}
# tamper_sig JWS OUT: a copy of a compact JWS with one character of its signature changed
tamper_sig() {
	"$py" - "$1" "$2" <<'PY'
import sys
h, p, s = open(sys.argv[1]).read().strip().split('.')
s = s[:10] + ('A' if s[10] != 'A' else 'B') + s[11:]
open(sys.argv[2], 'w').write('.'.join([h, p, s]) + '\n')
PY
}

kid=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["keys"][0]["kid"])' "$fx/jwks.json")
sha_of() { awk -v k="$1" '$1 == k { print $2 }' "$fx/signed-sha256.txt"; }
jws_sha=$(sha_of jws) dsse_sha=$(sha_of dsse) digest_sha=$(sha_of digest)
hint='(a key newer than this JWKS? fetch it again: credsign jwks --profile'

# ---- JWS
check "a JWS verifies against the JWKS (kid, status, claims)" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified JWS --jwks '$fx/jwks.json' --jws '$fx/token.jws' &&
		grep -q 'signing key:   $kid (active)' out.txt && grep -q '\"sub\": \"ci-deployer\"' out.txt &&
		grep -q 'typ:           release+jwt' out.txt"
check "a verified JWS names signed_sha256, the SHA-256 of its signing input" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified JWS --jwks '$fx/jwks.json' --jws '$fx/token.jws' &&
		grep -qx '  signed_sha256: $jws_sha' out.txt"
check "a JWS with typ application/credsign-cert+jwt is refused (wrong_typ)" \
	refused wrong_typ --jwks "$fx/jwks.json" --jws "$fx/app-typ.jws"
check "a JWS of an unlisted kid: the hint to fetch the JWKS again (--profile named)" \
	bash -c "$(declare -f run refused); credsign='$credsign'; refused unknown_kid --jwks '$fx/jwks-unknown.json' --profile release --jws '$fx/token.jws' &&
		grep -qF '$hint release)' err.txt"
"$py" - "$fx/jwks-unknown.json" jwks-unknown-profile.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); j['profile'] = {'name': 'release', 'configured': False}
json.dump(j, open(sys.argv[2], 'w'))
PY
check "a JWS of an unlisted kid: the hint names the JWKS's profile" \
	bash -c "$(declare -f run refused); credsign='$credsign'; refused unknown_kid --jwks jwks-unknown-profile.json --jws '$fx/token.jws' &&
		grep -qF '$hint release)' err.txt"
check "a JWS of a compromised key: no hint to fetch the JWKS" \
	bash -c "$(declare -f run refused); credsign='$credsign'; refused key_compromised --jwks '$fx/jwks-compromised.json' --jws '$fx/token.jws' &&
		! grep -qF 'newer than this JWKS' err.txt"
check "a JWS of a profile that also signs digests: verified, with a caution on stderr" \
	bash -c "$(declare -f run); credsign='$credsign'; run 0 verify-signature --jwks '$fx/jwks-profile-digest.json' --jws '$fx/token.jws' &&
		grep -q '^VERIFIED JWS\$' out.txt && grep -q '^credsign: caution: key $kid also signs bare digests' err.txt"
check "a JWS of a profile without digest: no caution" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified JWS --jwks '$fx/jwks-profile-nodigest.json' --jws '$fx/token.jws'"
# the key's history: its JWKS entry's formats_signed (the formats of the
# appliance's records by that key), whatever the profile allows now
"$py" - "$fx/jwks-profile-nodigest.json" <<'PY'
import json, sys
base = json.load(open(sys.argv[1]))
def write(name, formats_signed):
    j = json.loads(json.dumps(base))
    for k in j['keys']:
        k['formats_signed'] = formats_signed
    json.dump(j, open(name, 'w'))
write('jwks-signed-digest.json', ['digest', 'jws'])
write('jwks-signed-jws.json', ['dsse', 'jws'])
write('jwks-signed-odd.json', 'digest')  # not an array: no claim
PY
check "a JWS of a key that has signed digests (formats_signed), its profile without digest now: a caution" \
	bash -c "$(declare -f run); credsign='$credsign'; run 0 verify-signature --jwks jwks-signed-digest.json --jws '$fx/token.jws' &&
		grep -q '^VERIFIED JWS\$' out.txt && [ \$(wc -l < err.txt) -eq 1 ] &&
		grep -q '^credsign: caution: key $kid has signed bare digests (formats_signed in the JWKS): ' err.txt &&
		grep -q 'this JWS does not prove that the appliance checked its claims and typ' err.txt"
check "a JWS of a key whose records are jws and dsse only: no caution" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified JWS --jwks jwks-signed-jws.json --jws '$fx/token.jws'"
check "a formats_signed that is not an array says nothing: no caution" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified JWS --jwks jwks-signed-odd.json --jws '$fx/token.jws'"
"$py" - "$fx/jwks-profile-digest.json" jwks-signed-and-allowed.json <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
for k in j['keys']:
    k['formats_signed'] = ['digest']
json.dump(j, open(sys.argv[2], 'w'))
PY
check "a JWS of a key that has signed digests and whose profile allows them: one caution naming both" \
	bash -c "$(declare -f run); credsign='$credsign'; run 0 verify-signature --jwks jwks-signed-and-allowed.json --jws '$fx/token.jws' &&
		[ \$(wc -l < err.txt) -eq 1 ] &&
		grep -q '^credsign: caution: key $kid has signed bare digests (formats_signed in the JWKS) and also signs them (its profile allows format digest)' err.txt"
tamper_sig "$fx/token.jws" bad.jws
check "a JWS with a changed signature is refused (bad_signature)" refused bad_signature --jwks "$fx/jwks.json" --jws bad.jws
"$py" - "$fx/token.jws" forged.jws <<'PY'
import base64, json, sys
h, p, s = open(sys.argv[1]).read().strip().split('.')
pad = lambda t: t + '=' * (-len(t) % 4)
claims = json.loads(base64.urlsafe_b64decode(pad(p)))
claims['sub'] = 'someone-else'
p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip('=')
open(sys.argv[2], 'w').write('.'.join([h, p2, s]) + '\n')
PY
check "a JWS whose claims were changed is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --jws forged.jws
check "a JWS of a compromised key is refused (key_compromised)" \
	refused key_compromised --jwks "$fx/jwks-compromised.json" --jws "$fx/token.jws"
check "a JWS of a kid the JWKS does not list is refused (unknown_kid)" \
	refused unknown_kid --jwks "$fx/jwks-unknown.json" --jws "$fx/token.jws"
check "an expired JWS is refused (expired)" refused expired --jwks "$fx/jwks.json" --jws "$fx/expired.jws"
check "a DSSE envelope given as a JWS is refused (malformed)" \
	refused malformed --jwks "$fx/jwks.json" --jws "$fx/envelope.json"

# ---- DSSE
check "a DSSE envelope verifies (payloadType, payload digest)" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified 'DSSE envelope' --jwks '$fx/jwks.json' --dsse '$fx/envelope.json' &&
		grep -q 'payloadType:   application/vnd.in-toto+json' out.txt && grep -qx '  signed_sha256: $dsse_sha' out.txt"
check "a DSSE envelope of a profile that also signs digests: verified, with a caution" \
	bash -c "$(declare -f run); credsign='$credsign'; run 0 verify-signature --jwks '$fx/jwks-profile-digest.json' --dsse '$fx/envelope.json' &&
		grep -q '^VERIFIED DSSE envelope\$' out.txt && grep -q '^credsign: caution: key $kid also signs bare digests' err.txt"
check "a DSSE envelope of a key that has signed digests (formats_signed): verified, with a caution" \
	bash -c "$(declare -f run); credsign='$credsign'; run 0 verify-signature --jwks jwks-signed-digest.json --dsse '$fx/envelope.json' &&
		grep -q '^VERIFIED DSSE envelope\$' out.txt &&
		grep -q '^credsign: caution: key $kid has signed bare digests (formats_signed in the JWKS): .*this DSSE envelope does not prove that the appliance checked its payload type and body' err.txt"
check "a DSSE envelope of a key whose records are jws and dsse only: no caution" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified 'DSSE envelope' --jwks jwks-signed-jws.json --dsse '$fx/envelope.json'"
"$py" - "$fx/envelope.json" env-body.json env-type.json env-sig.json <<'PY'
import base64, json, sys
env = json.load(open(sys.argv[1]))
body = dict(env); body['payload'] = base64.b64encode(b'{"_type":"forged"}').decode()
json.dump(body, open(sys.argv[2], 'w'))
typ = dict(env); typ['payloadType'] = 'application/json'
json.dump(typ, open(sys.argv[3], 'w'))
sig = json.loads(json.dumps(env)); der = bytearray(base64.b64decode(sig['signatures'][0]['sig']))
der[-1] ^= 1
sig['signatures'][0]['sig'] = base64.b64encode(bytes(der)).decode()
json.dump(sig, open(sys.argv[4], 'w'))
PY
check "a DSSE envelope with another payload is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --dsse env-body.json
check "a DSSE envelope with another payloadType is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --dsse env-type.json
check "a DSSE envelope with a changed sig is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --dsse env-sig.json
check "a DSSE envelope of a compromised key is refused (key_compromised)" \
	refused key_compromised --jwks "$fx/jwks-compromised.json" --dsse "$fx/envelope.json"
check "a DSSE envelope of an unknown keyid is refused (unknown_kid), with the hint" \
	bash -c "$(declare -f run refused); credsign='$credsign'; refused unknown_kid --jwks '$fx/jwks-unknown.json' --dsse '$fx/envelope.json' &&
		grep -qF '$hint P)' err.txt"

# ---- digest
check "openssl dgst -verify accepts the DER digest signature" \
	openssl dgst -sha256 -verify "$fx/pub.pem" -signature "$fx/artifact.sig" "$fx/artifact.bin"
for form in artifact.sig artifact.sig.b64 artifact.sig.b64url; do
	check "a digest signature ($form) verifies" \
		bash -c "$(declare -f run verified); credsign='$credsign'; verified 'digest signature' --jwks '$fx/jwks.json' --signature '$fx/$form' '$fx/artifact.bin' &&
			grep -q 'signing key:   $kid (active)' out.txt && grep -qx '  signed_sha256: $digest_sha' out.txt"
done
check "a digest signature needs no caution (the profile's digests are what it signs)" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified 'digest signature' --jwks '$fx/jwks-profile-digest.json' --signature '$fx/artifact.sig' '$fx/artifact.bin'"
check "a digest signature of a key that has signed digests needs no caution either" \
	bash -c "$(declare -f run verified); credsign='$credsign'; verified 'digest signature' --jwks jwks-signed-digest.json --signature '$fx/artifact.sig' '$fx/artifact.bin'"
printf 'release 1.0 artifact bytes, changed\n' > changed.bin
check "a digest signature over another file is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --signature "$fx/artifact.sig" changed.bin
"$py" -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[-1] ^= 1; open(sys.argv[2], "wb").write(bytes(d))' \
	"$fx/artifact.sig" bad.sig
check "a changed DER signature is refused (bad_signature)" \
	refused bad_signature --jwks "$fx/jwks.json" --signature bad.sig "$fx/artifact.bin"
check "a digest signature of a compromised key is refused (key_compromised)" \
	refused key_compromised --jwks "$fx/jwks-compromised.json" --signature "$fx/artifact.sig" "$fx/artifact.bin"
check "a digest signature no key of the JWKS made is refused (bad_signature), with the hint" \
	bash -c "$(declare -f run refused); credsign='$credsign'; refused bad_signature --jwks '$fx/jwks-unknown.json' --profile release --signature '$fx/artifact.sig' '$fx/artifact.bin' &&
		grep -qF '$hint release)' err.txt"
printf 'not a signature\n' > junk.sig
check "a signature file that is no signature is refused (malformed)" \
	refused malformed --jwks "$fx/jwks.json" --signature junk.sig "$fx/artifact.bin"

# ---- usage
check "verify-signature without a signature is a usage error" run 2 verify-signature --jwks "$fx/jwks.json"
check "verify-signature with two kinds is a usage error" \
	run 2 verify-signature --jwks "$fx/jwks.json" --jws --dsse "$fx/token.jws"
check "verify-signature without --jwks or --profile is a usage error" \
	run 2 verify-signature --jws "$fx/token.jws"
check "verify-signature --profile without CONN and --jwks is a usage error" \
	run 2 verify-signature --profile release --jws "$fx/token.jws"
check "sign without --profile is a usage error" run 2 sign --format jws "$fx/artifact.bin"
check "sign --format dsse without --payload-type is a usage error" \
	run 2 sign --profile release --format dsse "$fx/artifact.bin"
check "sign --payload-type without dsse is a usage error" \
	run 2 sign --profile release --format jws --payload-type text/plain "$fx/artifact.bin"
check "sign with an unknown format is a usage error" run 2 sign --profile release --format cms "$fx/artifact.bin"
check "signature without get or find is a usage error" run 2 signature
check "signature get without an id is a usage error" run 2 signature get
check "signature get with an id that is not base64url is a usage error" run 2 signature get 'a/b'
check "signature get with --sha256 is a usage error" run 2 signature get abc --sha256 "$jws_sha"
check "signature find without --sha256 or --file is a usage error" run 2 signature find
check "signature find with both --sha256 and --file is a usage error" \
	run 2 signature find --sha256 "$jws_sha" --file "$fx/artifact.bin"
check "signature find --sha256 that is not 64 hex digits is a usage error" run 2 signature find --sha256 abc123
check "--sha256 outside signature find is a usage error" run 2 jwks --sha256 "$jws_sha"
check "signature find without CONN is a usage error" run 2 signature find --sha256 "$jws_sha"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
