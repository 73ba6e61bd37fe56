#!/usr/bin/env bash
# A preset may need the audit log kept longer than audit.retention_days
# (hipaa: 6 years, 45 CFR 164.316(b)(2)(i)): --check-config and the daemon's
# start warn, naming the setting, both numbers, the preset and its citation;
# long enough, no warning. The configuration stays valid either way.
set -euo pipefail
credsignd=${1:?usage: retention_warning.sh CREDSIGND SOURCE_DIR}
src=${2:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
echo placeholder > module.so
# --offline checks the TLS material: a self-signed server certificate
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
  -subj /CN=retention -days 2 2> /dev/null
cp cert.pem ca.pem
cp "$src/conf/presets.conf" presets.conf
echo 123456 > user.pin
base='tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; };
pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=t"; pin_file = "user.pin";
           signing_key = "pkcs11:object=k"; };
store = { path = "store.db"; };
server = { allow_root = true; };'
want="setting 'audit.retention_days': 400 days is shorter than the 2192 days preset hipaa needs, 45 CFR 164.316(b)(2)(i) (6 years)"

fail() { echo "FAIL: $*"; cat err.txt 2>/dev/null; exit 1; }

# 400 days: valid, with the warning
printf '%s\naudit = { retention_days = 400; };\n' "$base" > short.conf
"$credsignd" --offline --check-config short.conf > out.txt 2> err.txt || fail "short.conf refused"
grep -q "configuration valid" out.txt || fail "short.conf not reported valid"
grep -qF "short.conf: warning: $want" err.txt || fail "no retention warning for 400 days"
[ "$(grep -c retention_days err.txt)" = 1 ] || fail "the warning is not given once"

# 6 years kept (the default): no warning
printf '%s\n' "$base" > long.conf
"$credsignd" --offline --check-config long.conf > out.txt 2> err.txt || fail "long.conf refused"
grep -q "configuration valid" out.txt || fail "long.conf not reported valid"
if grep -q "retention_days" err.txt; then fail "a warning although 2192 days are kept"; fi

# an operator preset that needs more: named with its own citation
cat long.conf - > custom.conf <<'CONF'
presets = {
  records-vault = { version = 1; title = "Records vault"; standards = [ "internal records rule 7" ];
    types = [ "password" ]; charset = "alnum"; classes = [ ]; min_length = 20; default_length = 24;
    strength_bits = 128; rotation = "yearly"; audit_retention_days = 3653;
    cites = { retention = "internal records rule 7.3 (10 years)"; }; };
};
CONF
"$credsignd" --offline --check-config custom.conf > out.txt 2> err.txt || fail "custom.conf refused"
grep -qF "warning: setting 'audit.retention_days': 2192 days is shorter than the 3653 days preset records-vault needs, internal records rule 7.3 (10 years)" err.txt ||
  fail "no warning for the operator preset"
sed 's/audit_retention_days = 3653;/audit_retention_days = 0;/' custom.conf > zero.conf
if "$credsignd" --offline --check-config zero.conf 2> err.txt; then fail "audit_retention_days = 0 accepted"; fi
grep -q "setting 'presets.records-vault.audit_retention_days': 0 is out of range 1..36500" err.txt ||
  fail "audit_retention_days = 0 not reported"

# the daemon's start: the same warning in its log, before the token is
# opened (the placeholder module then stops the start)
if "$credsignd" --config short.conf > out.txt 2> err.txt; then fail "started with a placeholder module"; fi
grep -q "preset hipaa needs, 45 CFR 164.316(b)(2)(i)" err.txt || fail "no retention warning at start"
grep "preset hipaa needs" err.txt | grep -q "warn" || fail "the start-up message is not a warning"
"$credsignd" --config long.conf > out.txt 2> err.txt || true
if grep -q "retention_days" err.txt; then fail "a warning at start although 2192 days are kept"; fi
echo "retention_warning: ok"
