#!/usr/bin/env bash
# credsign access check: the decision access.grants make, explained from the
# configuration file alone (no daemon). Against the development
# environment's grants (taken from hsm-setup/dev-env, so the two cannot
# drift): exit 0 allowed with the grant that allows it, 1 denied with the
# missing grant and why each of the identity's grants does not cover the
# request, 2 for usage and configuration errors (FILE:LINE: setting).
# sign and signature.read are scoped by --profile (the signing profiles of
# the development environment's signing group).
#
#   access_check.sh CREDSIGN SOURCE_DIR
set -euo pipefail
credsign=${1:?usage: access_check.sh CREDSIGN SOURCE_DIR}
src=${2:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
for f in cert.pem key.pem ca.pem module.so; do echo placeholder > $f; done
echo 123456 > user.pin
unset CREDSIGN_CONF
base_conf() {
  cat <<CONF
server = { presets_file = "$src/conf/presets.conf"; };
tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; };
pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=credsign"; pin_file = "user.pin";
           signing_key = "pkcs11:object=k"; };
CONF
}
{ base_conf; sed -n '/^access = {/,/^};/p' "$src/hsm-setup/dev-env"
  sed -n '/^signing = {/,/^};/p' "$src/hsm-setup/dev-env" | sed 's/\$release_label/es256-release-1/'; } > dev.conf
grep -q 'role = "generator"' dev.conf || { echo "FAIL: no grants found in hsm-setup/dev-env"; exit 1; }
grep -q 'name = "release"' dev.conf || { echo "FAIL: no signing profile found in hsm-setup/dev-env"; exit 1; }

fail() { echo "FAIL: $*"; cat out.txt err.txt 2> /dev/null; exit 1; }
# check WANT_RC ARGS...: runs credsign access check ARGS --config dev.conf
check() {
  local want=$1 rc=0
  shift
  "$credsign" access check "$@" --config "${conf:-dev.conf}" > out.txt 2> err.txt || rc=$?
  [ "$rc" -eq "$want" ] || fail "access check $*: exit $rc, want $want"
}
has() { grep -qF -- "$1" out.txt err.txt || fail "no \"$1\""; }
id=spiffe://credsign.test

# ci-deployer: generator for payments in production and staging
check 0 $id/ci-deployer generate payments production soc2
has "ALLOWED by access.grants[0] (role generator)"
has "(dev.conf:7)" # the file as named on the command line (not $tmp/dev.conf)
grep -qF "$tmp/" out.txt err.txt && fail "the absolute path instead of the file as given"
has "projects payments; environments production, staging; presets any"
check 0 $id/ci-deployer certify payments staging pci-dss-4
check 0 $id/ci-deployer cert.read payments
check 1 $id/ci-deployer generate payments development soc2
has "DENIED: no generator grant for project payments, environment development, preset soc2 (needs role generator)"
has "environment development is not among its environments"
check 1 $id/ci-deployer generate web production soc2
has "project web is not among its projects"
check 1 $id/ci-deployer generate - production soc2
has "the request has no project"
# separation of duties: a generator does not read the audit log
check 1 $id/ci-deployer audit.read
has "DENIED: no auditor grant for every project"
has "role generator does not allow audit.read"
check 1 $id/ci-deployer reload
has "no operator grant (reload)"
# web-deployer: every environment of web
check 0 $id/web-deployer generate web anything db-development
has "ALLOWED by access.grants[1]"
check 1 $id/web-deployer cert.read payments
# auditor: certificates and the audit log of every project; no generating
check 0 $id/auditor audit.read
has "ALLOWED by access.grants[3] (role auditor)"
check 0 $id/auditor cert.read web
check 1 $id/auditor generate payments production soc2
has "role auditor does not allow generate"
# operator: metrics, readiness detail, reload
for a in metrics.read ready.detail reload presets.read policy.read; do check 0 $id/operator $a; done
has "ALLOWED by access.grants[4] (role operator)"
check 1 $id/operator cert.read payments
# stranger: nothing (deny by default); near misses of real identities too
for a in generate certify cert.read audit.read presets.read policy.read metrics.read ready.detail reload; do
  check 1 $id/stranger $a payments production soc2
  has "none: it is refused everything but /healthz, /readyz and the JWKS (deny by default)"
done
for a in sign signature.read; do
  check 1 $id/stranger $a --profile release
  has "none: it is refused everything but /healthz, /readyz and the JWKS (deny by default)"
done

# signing profiles: ci-deployer signs with release (and reads its
# records), the auditor reads them; nobody else signs
check 0 $id/ci-deployer sign --profile release
has "identity $id/ci-deployer, action sign, profile release"
has "ALLOWED by access.grants[2] (role signer)"
has "(dev.conf:11): role signer; identity $id/ci-deployer; profiles release; no rate limit"
check 0 $id/ci-deployer signature.read --profile release
has "ALLOWED by access.grants[2] (role signer)"
check 1 $id/ci-deployer sign --profile nightly
has "note: profile nightly is not in signing.profiles: POST /api/sign refuses it (unknown_profile) whoever asks"
has "DENIED: no signer grant for profile nightly (needs role signer)"
has "profile nightly is not among its profiles"
has "role generator does not allow sign"
check 0 $id/auditor signature.read --profile release
has "ALLOWED by access.grants[3] (role auditor)"
has "projects *; profiles release"
check 1 $id/auditor signature.read --profile nightly
has "DENIED: no auditor or signer grant for profile nightly (needs role auditor or signer)"
check 1 $id/auditor sign --profile release
has "role auditor does not allow sign"
check 1 $id/web-deployer sign --profile release
has "role generator does not allow sign"
check 1 $id/operator signature.read --profile release
has "role operator does not allow signature.read"
check 1 $id/ci-deployer/x generate payments production soc2
check 1 $id/Auditor audit.read

# a pattern grant, with a rate limit, and an identity holding two grants
{ base_conf; cat <<'CONF'
access = { grants = (
  { identity = "spiffe://example.org/ns/payments/*"; role = "generator";
    projects = [ "payments" ]; environments = [ "*" ]; presets = [ "pci-dss-4" ];
    rate = 20.0; burst = 40; },
  { identity = "spiffe://example.org/ns/payments/api"; role = "auditor"; projects = [ "payments" ]; }
); };
CONF
} > pattern.conf
conf=pattern.conf check 0 spiffe://example.org/ns/payments/api generate payments production pci-dss-4
has "rate 20 requests/s, burst 40"
conf=pattern.conf check 1 spiffe://example.org/ns/payments/api generate payments production soc2
has "preset soc2 is not among its presets"
has "role auditor does not allow generate"
conf=pattern.conf check 0 spiffe://example.org/ns/payments/api audit.read payments
has "ALLOWED by access.grants[1] (role auditor)"
conf=pattern.conf check 1 spiffe://example.org/ns/payments generate payments production pci-dss-4
conf=pattern.conf check 1 spiffe://example.org/ns/payments-old/api generate payments production pci-dss-4
# an auditor without profiles reads no signature records
conf=pattern.conf check 1 spiffe://example.org/ns/payments/api signature.read --profile release
has "role auditor without profiles covers no signing profile"
# a signer grant with "*" and a rate limit
{ base_conf; cat <<'CONF'
access = { grants = (
  { identity = "spiffe://example.org/ns/release/*"; role = "signer"; profiles = [ "*" ]; rate = 5; }
); };
signing = { profiles = ( { name = "release"; key = "pkcs11:object=rel"; formats = [ "digest" ]; },
                         { name = "tokens"; key = "pkcs11:object=tok"; formats = [ "digest" ]; } ); };
CONF
} > signer.conf
conf=signer.conf check 0 spiffe://example.org/ns/release/ci sign --profile tokens
has "profiles *; rate 5 requests/s, burst 5"
conf=signer.conf check 1 spiffe://example.org/ns/release sign --profile tokens

# usage errors
check 2 $id/operator
check 2 $id/operator generate a b c d
check 2 $id/operator delete
has "unknown action 'delete'"
has "ACTION: generate, certify, cert.read, audit.read, presets.read, policy.read, metrics.read, ready.detail, reload, sign, signature.read"
has "access check IDENTITY sign|signature.read --profile P --config FILE"
check 2 $id/ci-deployer sign
has "sign needs --profile P"
check 2 $id/auditor signature.read
has "signature.read needs --profile P"
check 2 $id/ci-deployer generate payments production soc2 --profile release
has "--profile is for sign and signature.read only"
check 2 $id/ci-deployer sign payments --profile release
has "sign is scoped by --profile alone"
rc=0; "$credsign" access check $id/operator reload > out.txt 2> err.txt || rc=$?
[ "$rc" -eq 2 ] || fail "no --config: exit $rc"
has "access check needs --config FILE (or CREDSIGN_CONF)"
rc=0; CREDSIGN_CONF=dev.conf "$credsign" access check $id/operator reload > out.txt 2> err.txt || rc=$?
[ "$rc" -eq 0 ] || fail "CREDSIGN_CONF: exit $rc"
rc=0; "$credsign" access list --config dev.conf > out.txt 2> err.txt || rc=$?
[ "$rc" -eq 2 ] || fail "access list: exit $rc"

# configuration errors name FILE:LINE and the setting
{ base_conf; echo 'access = { grants = ({ identity = "spiffe://credsign.test/x"; role = "admin"; }); };'; } > bad.conf
conf=bad.conf check 2 $id/x reload
has "bad.conf:5: setting 'access.grants.[0].role': must be \"generator\", \"auditor\", \"operator\" or \"signer\""
grep -q "^bad.conf:5: " err.txt || fail "the problem line does not name the file as given"
has "bad.conf: configuration invalid"
{ base_conf; cat <<'CONF'
access = { grants = ({ identity = "spiffe://credsign.test/x"; role = "generator";
  projects = [ "p" ]; environments = [ "*" ]; presets = [ "soc2", "sox" ]; }); };
CONF
} > preset.conf
conf=preset.conf check 2 $id/x generate p e soc2
has "preset.conf:6: setting 'access.grants.[0].presets': unknown preset 'sox'"
# a grant's profiles must be signing profiles; a signer has profiles and nothing else
{ base_conf; cat <<'CONF'
access = { grants = ({ identity = "spiffe://credsign.test/x"; role = "signer";
  profiles = [ "release" ]; }); };
CONF
} > noprofile.conf
conf=noprofile.conf check 2 $id/x sign --profile release
has "noprofile.conf:6: setting 'access.grants.[0].profiles': element 1: unknown profile 'release' (signing.profiles defines none)"
{ base_conf; cat <<'CONF'
access = { grants = ({ identity = "spiffe://credsign.test/x"; role = "signer";
  projects = [ "p" ]; }); };
CONF
} > signer-projects.conf
conf=signer-projects.conf check 2 $id/x sign --profile release
has "signer-projects.conf:6: setting 'access.grants.[0].projects': not allowed with role signer (a signer's scope is its profiles)"
has "signer-projects.conf:5: setting 'access.grants.[0].profiles': required with role signer"
# certificates.public: any authenticated client reads certificates, as the
# daemon decides
check 1 $id/stranger cert.read payments
{ cat dev.conf; echo 'certificates = { public = true; };'; } > public.conf
conf=public.conf check 0 $id/stranger cert.read payments
has "ALLOWED by certificates.public"
conf=public.conf check 1 $id/stranger generate payments production soc2
echo "access_check: ok"
