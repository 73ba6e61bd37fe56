#!/usr/bin/env bash
# credsignd --check-config: exit 0 on a good file, 1 with FILE:LINE messages
# on a bad one; the annotated example documents exactly the known settings.
# The files here are placeholders, so the file checks run with --offline;
# without it the token and the TLS material are checked too (against a real
# token: tests/integration/diagnostics_test.sh).
set -euo pipefail
credsignd=${1:?usage: check_config.sh CREDSIGND SOURCE_DIR}
src=${2:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
umask 077
for f in cert.pem key.pem ca.pem module.so; do echo placeholder > $f; done
cp "$src/conf/presets.conf" presets.conf
echo 123456 > user.pin
cat > good.conf <<'CONF'
tls = { cert = "cert.pem"; key = "key.pem"; ca = "ca.pem"; };
pkcs11 = { module = "module.so"; token_uri = "pkcs11:token=t"; pin_file = "user.pin";
           signing_key = "pkcs11:object=k"; };
CONF
"$credsignd" --offline --check-config good.conf | grep -q "configuration valid"

# Without --offline the module, the token and the TLS material are opened:
# placeholders are refused, each problem naming its setting.
if "$credsignd" --check-config good.conf > out.txt 2> err.txt; then
  echo "FAIL: placeholders passed the online check"; exit 1
fi
for want in "good.conf:2: setting 'pkcs11.module': module.so: PKCS#11 module could not be loaded" \
            "good.conf:1: setting 'tls.cert': $tmp/cert.pem: no certificate" \
            "good.conf:1: setting 'tls.ca': $tmp/ca.pem: no CA certificate" \
            "good.conf: configuration invalid"; do
  grep -qF "$want" err.txt || { echo "FAIL: no \"$want\""; cat err.txt; exit 1; }
done
! grep -q "configuration valid" out.txt || { echo "FAIL: said valid"; exit 1; }
# usage: --offline belongs to --check-config; one action at a time
for args in "--offline --config good.conf" "--config good.conf --check-config good.conf" "--check-config good.conf extra"; do
  rc=0
  # shellcheck disable=SC2086
  "$credsignd" $args > /dev/null 2>&1 || rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: credsignd $args: exit $rc, not a usage error (2)"; exit 1; }
done
"$credsignd" --help | grep -q -- "--check-config FILE \[--offline\]" || { echo "FAIL: --help lacks --offline"; exit 1; }

sed 's/pin_file = "user.pin"/pin_file = "user.pin"; sesions = 2/' good.conf > bad.conf
if "$credsignd" --offline --check-config bad.conf 2> err.txt; then
  echo "FAIL: a bad file was accepted"; exit 1
fi
grep -q "bad.conf:2: setting 'pkcs11.sesions': unknown setting" err.txt || { cat err.txt; exit 1; }

# Operator presets live in the main configuration, validated like the rest.
cat good.conf - > custom.conf <<'CONF'
presets = {
  team-vault = { version = 3; title = "Team vault"; standards = [ "internal policy 4.2" ];
    types = [ "password" ]; charset = "alnum"; classes = [ "upper", "digit" ];
    min_length = 20; default_length = 24; strength_bits = 128; rotation = "yearly"; };
};
CONF
"$credsignd" --offline --check-config custom.conf | grep -q "configuration valid" || { echo "FAIL: operator preset refused"; exit 1; }
sed 's/team-vault = { version = 3;/soc2 = { version = 3;/' custom.conf > clash.conf
if "$credsignd" --offline --check-config clash.conf 2> err.txt; then echo "FAIL: a built-in preset was redefined"; exit 1; fi
grep -q "clash.conf:[0-9]*: setting 'presets.soc2': a preset of this name already exists" err.txt || { cat err.txt; exit 1; }
sed 's/strength_bits = 128;/strength_bits = 80;/' custom.conf > weak.conf
if "$credsignd" --offline --check-config weak.conf 2> err.txt; then echo "FAIL: a preset below 112 bits was accepted"; exit 1; fi
grep -q "setting 'presets.team-vault.strength_bits': 80 is out of range 112..256" err.txt || { cat err.txt; exit 1; }

# access.grants: presets they name must exist (the operator's included);
# one identity with generator and auditor rights is a warning
cat custom.conf - > grants.conf <<'CONF'
access = { grants = (
  { identity = "spiffe://t/ci"; role = "generator"; projects = [ "p" ]; environments = [ "*" ];
    presets = [ "soc2", "team-vault" ]; },
  { identity = "spiffe://t/*"; role = "auditor"; projects = [ "*" ]; }
); };
CONF
"$credsignd" --offline --check-config grants.conf > out.txt 2> err.txt || { echo "FAIL: grants refused"; cat err.txt; exit 1; }
grep -q "configuration valid" out.txt || { echo "FAIL: grants.conf not valid"; exit 1; }
grep -qF "grants.conf: warning: separation of duties: spiffe://t/ci holds generator rights (access.grants[0]) and auditor rights (access.grants[1])" err.txt ||
  { echo "FAIL: no separation-of-duties warning"; cat err.txt; exit 1; }
sed 's/"soc2", "team-vault"/"soc2", "team-vaults"/' grants.conf > unknown.conf
if "$credsignd" --offline --check-config unknown.conf 2> err.txt; then echo "FAIL: an unknown preset in a grant was accepted"; exit 1; fi
grep -q "unknown.conf:[0-9]*: setting 'access.grants.\[0\].presets': unknown preset 'team-vaults'" err.txt || { cat err.txt; exit 1; }

# The example: every setting known, syntax valid. Its paths point at a
# production layout that does not exist here, so only file errors may appear.
"$credsignd" --offline --check-config "$src/conf/credsignd.conf.example" 2> example.txt || true
if grep -v -E "is not readable|PIN file|is not writable|configuration invalid" example.txt; then
  echo "FAIL: the example has errors other than missing files"; exit 1
fi
for s in listen public_base_url node_id workers max_connections max_body_bytes max_header_bytes timeout_ms presets_file wordlist_file cert key ca crl crl_check verify_depth module \
         token_uri pin_file sessions signing_key validation program openssl_fips path level format checkpoint_entries checkpoint_seconds write_timeout_ms retention_days syslog \
         grants public; do
  grep -q "^ *$s = " "$src/conf/credsignd.conf.example" || { echo "FAIL: example lacks $s"; exit 1; }
done
echo "check_config: ok"
